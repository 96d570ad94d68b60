//! Syntax of the extension's settings, checked when a setting is changed so a
//! mistake is reported by `SET`/`ALTER SYSTEM`, not by the first sign-in.
//! Messages never repeat a secret value.

use crate::validate;

/// `redirect_uri` and `client_uri`: absolute http(s), no credentials or fragment.
pub fn web_url(raw: &str) -> Result<(), String> {
    validate::server_url(raw).map_err(str::to_owned)
}

/// `client_metadata_url`: a Client ID Metadata Document must be served over
/// https from a URL with a path.
pub fn client_metadata_url(raw: &str) -> Result<(), String> {
    web_url(raw)?;
    let url = url::Url::parse(raw).map_err(|_| "the URL is not an absolute URL".to_owned())?;
    if url.scheme() != "https" {
        return Err("a client metadata document URL must use https".into());
    }
    if url.path() == "/" || url.path().is_empty() {
        return Err("a client metadata document URL must have a path".into());
    }
    Ok(())
}

/// `encryption_key`: 64 hexadecimal characters (32 bytes).
pub fn encryption_key(raw: &str) -> Result<[u8; 32], String> {
    let raw = raw.trim();
    if raw.len() != 64 || !raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "the key must be 64 hexadecimal characters (32 bytes); the value given has {} characters",
            raw.chars().count()
        ));
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&raw[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
    }
    Ok(key)
}

/// One entry of `allowed_hosts`: a host name or IP literal, optionally with a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    pub host: String,
    pub port: Option<u16>,
}

/// `allowed_hosts`: comma-separated `host` or `host:port`, IPv6 in brackets.
/// Empty means no allow list.
pub fn allowed_hosts(raw: &str) -> Result<Vec<AllowedHost>, String> {
    let mut hosts = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let shown: String = entry.chars().take(80).flat_map(char::escape_default).collect();
        let bad = || format!("\"{shown}\" is not a host name or host:port");
        let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
            let (v6, after) = rest.split_once(']').ok_or_else(bad)?;
            v6.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(bad)?),
            };
            (format!("[{}]", v6.to_ascii_lowercase()), port)
        } else {
            let (host, port) = match entry.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (entry, None),
            };
            let valid = !host.is_empty()
                && host.len() <= 253
                && host.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                });
            if !valid {
                return Err(bad());
            }
            (host.to_ascii_lowercase(), port)
        };
        let port = match port {
            None => None,
            Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad)?),
        };
        hosts.push(AllowedHost { host, port });
    }
    Ok(hosts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(web_url("https://app.example.com/oauth/callback").is_ok());
        assert!(web_url("http://127.0.0.1:3000/cb").is_ok());
        assert!(web_url("https://app.example.com/cb#x").is_err());
        assert!(web_url("myapp:/cb").is_err());
        assert!(client_metadata_url("https://app.example.com/oauth/client.json").is_ok());
        assert!(client_metadata_url("http://app.example.com/client.json").is_err());
        assert!(client_metadata_url("https://app.example.com/").is_err());
    }

    #[test]
    fn encryption_keys_are_checked_without_echo() {
        let key = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
        assert_eq!(encryption_key(key).unwrap()[31], 0xff);
        let err = encryption_key("not-hex-secret").unwrap_err();
        assert!(!err.contains("not-hex-secret"));
        assert!(encryption_key(&"g".repeat(64)).is_err());
        assert!(encryption_key(&"a".repeat(63)).is_err());
    }

    #[test]
    fn allowed_host_lists() {
        assert_eq!(allowed_hosts("").unwrap(), vec![]);
        assert_eq!(
            allowed_hosts(" MCP.example.com , api.example.com:8443,[::1]:9000, 10.0.0.1").unwrap(),
            vec![
                AllowedHost { host: "mcp.example.com".into(), port: None },
                AllowedHost { host: "api.example.com".into(), port: Some(8443) },
                AllowedHost { host: "[::1]".into(), port: Some(9000) },
                AllowedHost { host: "10.0.0.1".into(), port: None },
            ]
        );
        for bad in ["http://x.com", "x.com/path", "x.com:0", "x.com:99999", "[::1", "[zz]", "-x.com", "a..b", "x.com:", "*.x.com"] {
            assert!(allowed_hosts(bad).is_err(), "{bad} accepted");
        }
    }
}

/// `client_capabilities`: a JSON object of MCP client capabilities (as in
/// `initialize`), every member one rmcp's model knows; empty means none.
pub fn client_capabilities(raw: &str) -> Result<rmcp::model::ClientCapabilities, String> {
    if raw.trim().is_empty() {
        return Ok(Default::default());
    }
    let given: serde_json::Value =
        serde_json::from_str(raw).map_err(|_| "the value must be a JSON object such as {\"elicitation\": {\"form\": {}}}".to_owned())?;
    if !given.is_object() {
        return Err("the value must be a JSON object such as {\"elicitation\": {\"form\": {}}}".into());
    }
    let parsed: rmcp::model::ClientCapabilities =
        serde_json::from_value(given.clone()).map_err(|e| format!("the capabilities do not match the MCP schema: {e}"))?;
    let kept = serde_json::to_value(&parsed).map_err(|e| e.to_string())?;
    for key in given.as_object().into_iter().flat_map(|o| o.keys()) {
        if kept.get(key).is_none() {
            return Err(format!("{key:?} is not a client capability (known: roots, sampling, elicitation, experimental, extensions)"));
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod capability_tests {
    use super::client_capabilities;

    #[test]
    fn client_capabilities_are_checked_against_the_schema() {
        assert_eq!(serde_json::to_value(client_capabilities("").unwrap()).unwrap(), serde_json::json!({}));
        let caps = client_capabilities(r#"{"elicitation": {"form": {}}, "roots": {"listChanged": true}}"#).unwrap();
        assert!(caps.elicitation.is_some() && caps.roots.is_some() && caps.sampling.is_none());
        for bad in ["[]", "elicitation", r#"{"elicitaton": {}}"#, r#"{"roots": 3}"#] {
            assert!(client_capabilities(bad).is_err(), "{bad}");
        }
    }
}
