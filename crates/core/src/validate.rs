//! Validation of what users store on a server row: the MCP URL and the
//! custom headers. Messages name the problem and, for headers, the header
//! name; never a header value (values are secrets).

use crate::text::MIN_SECRET_LEN;
use serde_json::Value;

pub const MAX_URL_LEN: usize = 2048;
pub const MAX_HEADERS: usize = 20;
pub const MAX_HEADER_NAME_LEN: usize = 256;
pub const MAX_HEADER_VALUE_LEN: usize = 4096;

/// Headers the HTTP layer owns: framing, hop-by-hop, and the MCP transport's own.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
    "proxy-connection",
    "accept",
    "accept-encoding",
    "mcp-session-id",
    "mcp-protocol-version",
    "last-event-id",
    "cookie",
];

/// Checks an MCP server URL: absolute http(s) with a host, no credentials, no
/// fragment, no whitespace, at most 2048 characters.
pub fn server_url(raw: &str) -> Result<(), &'static str> {
    if raw.is_empty() {
        return Err("the URL is empty");
    }
    if raw.chars().count() > MAX_URL_LEN {
        return Err("the URL is longer than 2048 characters");
    }
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the URL contains whitespace or control characters");
    }
    if raw.contains('#') {
        return Err("the URL has a fragment (#...)");
    }
    let url = url::Url::parse(raw).map_err(|_| "the URL is not an absolute URL")?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("the URL scheme must be http or https");
    }
    // `Url::parse` lower-cases the scheme; insist the original had "//" so
    // that "https:example.com" is not read as a host.
    let after_scheme = raw.get(url.scheme().len()..).unwrap_or("");
    if !after_scheme.starts_with("://") {
        return Err("the URL is not an absolute URL");
    }
    if after_scheme.starts_with(":///") {
        return Err("the URL has no host");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the URL contains credentials (user:password@); use headers or OAuth instead");
    }
    Ok(())
}

/// RFC 9110 `token`: the characters a header field name may have.
fn is_token(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Checks the `headers` object: at most 20 string values under token names,
/// names unique ignoring case, values at most 4096 characters without CR, LF
/// or other control characters (a tab is allowed), and none of the headers
/// the transport sets itself. With `sealed`, values may also be sealed
/// (`enc1:` + base64, as stored), which are longer than their plaintext.
pub fn headers_stored(value: &Value) -> Result<(), String> {
    check_headers(value, true)
}

/// `headers_stored` for values as written by users: plaintext only.
pub fn headers(value: &Value) -> Result<(), String> {
    check_headers(value, false)
}

fn check_headers(value: &Value, sealed: bool) -> Result<(), String> {
    let Value::Object(map) = value else {
        return Err("headers must be a JSON object of header names to string values".into());
    };
    if map.len() > MAX_HEADERS {
        return Err(format!("at most {MAX_HEADERS} headers are allowed, found {}", map.len()));
    }
    let mut seen = std::collections::HashSet::new();
    for (name, value) in map {
        if name.len() > MAX_HEADER_NAME_LEN || !is_token(name) {
            let shown: String = name.chars().take(40).flat_map(char::escape_default).collect();
            return Err(format!("\"{shown}\" is not a valid header name"));
        }
        let lower = name.to_ascii_lowercase();
        if RESERVED_HEADERS.contains(&lower.as_str()) {
            return Err(format!("the {name} header is set by the transport and cannot be configured"));
        }
        if !seen.insert(lower) {
            return Err(format!("the {name} header appears more than once (names ignore case)"));
        }
        let Value::String(text) = value else {
            return Err(format!("the value of the {name} header must be a string"));
        };
        if sealed && text.starts_with("enc1:") {
            let body = &text["enc1:".len()..];
            if body.len() > 2 * MAX_HEADER_VALUE_LEN || !body.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)) {
                return Err(format!("the sealed value of the {name} header is malformed"));
            }
            continue;
        }
        if text.chars().count() > MAX_HEADER_VALUE_LEN {
            return Err(format!("the value of the {name} header is longer than {MAX_HEADER_VALUE_LEN} characters"));
        }
        if text.chars().any(|c| c.is_control() && c != '\t') {
            return Err(format!("the value of the {name} header contains CR, LF or another control character"));
        }
        // Values are secrets, removed from whatever a server says back; a
        // short one could not be without removing ordinary words too.
        let credential = text.split_once(' ').map_or(text.as_str(), |(_, rest)| rest.trim());
        if credential.chars().count() < MIN_SECRET_LEN {
            return Err(format!(
                "the value of the {name} header (after its scheme, if it has one) is shorter than {MIN_SECRET_LEN} characters: \
                 header values are kept as secrets, and one that short cannot be kept out of what servers say back"
            ));
        }
    }
    Ok(())
}

/// The header names, sorted, for listings that must not show values.
pub fn header_keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
    keys.sort();
    keys
}

/// A slug from a display name: lower-case ASCII letters and digits, other
/// runs turned into one '-', trimmed, at most 24 characters; "server" if
/// nothing is left.
pub fn slug_from_name(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let mut slug: String = slug.trim_end_matches('-').chars().take(24).collect();
    while slug.ends_with('-') {
        slug.pop();
    }
    if slug.is_empty() {
        "server".into()
    } else {
        slug
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_good_urls() {
        for ok in [
            "https://mcp.example.com/mcp",
            "http://127.0.0.1:8080/mcp",
            "HTTPS://Example.com",
            "https://[::1]:9000/a?b=c",
            "https://example.com/path;x?y=1",
        ] {
            assert_eq!(server_url(ok), Ok(()), "{ok}");
        }
        assert!(server_url(&format!("https://e.com/{}", "a".repeat(MAX_URL_LEN - 14))).is_ok());
    }

    #[test]
    fn rejects_bad_urls() {
        for bad in [
            "",
            "mcp.example.com",
            "/mcp",
            "ftp://example.com",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "data:text/plain,x",
            " https://example.com",
            "https://example.com/a b",
            "https://example.com/#frag",
            "https://example.com#",
            "https://user:pw@example.com/",
            "https://user@example.com/",
            "https:example.com",
            "https://",
            "http:///x",
            "https://exa\nmple.com",
            "https://example.com/\r\nX: y",
            "vbscript:msgbox",
            "JavaScript:alert(1)",
        ] {
            assert!(server_url(bad).is_err(), "{bad:?} accepted");
        }
        assert!(server_url(&format!("https://e.com/{}", "a".repeat(MAX_URL_LEN))).is_err());
    }

    #[test]
    fn validates_headers() {
        assert_eq!(headers(&json!({})), Ok(()));
        assert_eq!(headers(&json!({"Authorization": "Bearer sk-live-0123", "X-Api-Key": "key\tvalue"})), Ok(()));
        let too_many: serde_json::Map<String, Value> = (0..21).map(|i| (format!("X-H{i}"), json!("v"))).collect();
        assert!(headers(&Value::Object(too_many)).unwrap_err().contains("at most 20"));
        for (bad, why) in [
            (json!([]), "JSON object"),
            (json!("x"), "JSON object"),
            (json!({"": "v"}), "not a valid header name"),
            (json!({"X Y": "v"}), "not a valid header name"),
            (json!({"X:Y": "v"}), "not a valid header name"),
            (json!({"X-\u{e9}": "v"}), "not a valid header name"),
            (json!({"X-A": 1}), "must be a string"),
            (json!({"X-A": null}), "must be a string"),
            (json!({"X-A": "a\r\nInjected: 1"}), "CR, LF"),
            (json!({"X-A": "a\nb"}), "CR, LF"),
            (json!({"X-A": "a\u{0}b"}), "CR, LF"),
            (json!({"Host": "evil"}), "set by the transport"),
            (json!({"mcp-session-id": "x"}), "set by the transport"),
            (json!({"X-A": "value-0001", "x-a": "value-0002"}), "more than once"),
            (json!({"X-A": "v".repeat(4097)}), "longer than 4096"),
            (json!({"X-Api-Key": "k-12345"}), "shorter than 8 characters"),
            (json!({"Authorization": "Bearer k-12345"}), "shorter than 8 characters"),
            (json!({"Authorization": "Bearer        "}), "shorter than 8 characters"),
        ] {
            let err = headers(&bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
            assert!(!err.contains("Injected"), "value leaked: {err}");
        }
    }

    #[test]
    fn header_values_never_appear_in_errors() {
        let secret = "sk-live-0123456789";
        for v in [json!({"X-A": format!("{secret}\n")}), json!({"X-A": secret.repeat(500)})] {
            assert!(!headers(&v).unwrap_err().contains(secret));
        }
    }

    #[test]
    fn lists_header_keys_sorted() {
        assert_eq!(header_keys(&json!({"b": "1", "A": "2"})), vec!["A", "b"]);
        assert!(header_keys(&json!([])).is_empty());
    }

    #[test]
    fn derives_slugs() {
        assert_eq!(slug_from_name("GitHub"), "github");
        assert_eq!(slug_from_name("  My  Fancy Server!! "), "my-fancy-server");
        assert_eq!(slug_from_name("Linear (prod) 2"), "linear-prod-2");
        assert_eq!(slug_from_name("日本語"), "server");
        assert_eq!(slug_from_name("---"), "server");
        assert_eq!(slug_from_name("a very long server name that goes on"), "a-very-long-server-name");
        assert_eq!(slug_from_name("Ünïcode Çafé"), "n-code-af");
        for name in ["x", "A b", "a-very-long-server-name-that-goes-on", "x_y"] {
            let s = slug_from_name(name);
            assert!(s.len() <= 24 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
        }
    }
}
