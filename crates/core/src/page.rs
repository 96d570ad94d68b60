//! The page an application's OAuth callback route returns to the popup
//! (`mcp_oauth_callback_page`): it tells the window that opened it how the
//! sign-in ended, with `postMessage` to exactly one origin, and closes
//! itself. Everything reflected is escaped for where it lands (HTML text,
//! JSON inside a script element); a Content-Security-Policy allows only the
//! page's own script, by hash.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::json;
use sha2::{Digest, Sha256};
use url::Url;

/// The message type the opener listens for.
pub const MESSAGE_TYPE: &str = "mcp_oauth_done";

/// The page's only script: reads the result from the JSON element, posts it
/// to the opener at the target origin, and closes the popup.
const SCRIPT: &str = "(function () {\n\
  var data = JSON.parse(document.getElementById(\"mcp-oauth-result\").textContent);\n\
  if (window.opener) { window.opener.postMessage(data.message, data.targetOrigin); }\n\
  window.close();\n\
})();";

/// An origin (`scheme://host[:port]`) a message may be posted to: http or
/// https, nothing after the authority. Never `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetOrigin(String);

impl TargetOrigin {
    pub fn parse(text: &str) -> Result<Self, String> {
        let refuse = |why: &str| Err(format!("target_origin must be an origin such as https://app.example.com: {why}"));
        if text.len() > 2048 {
            return refuse("it is too long");
        }
        let Ok(url) = Url::parse(text) else { return refuse("it is not an absolute URL") };
        if !matches!(url.scheme(), "http" | "https") {
            return refuse("only http and https origins can receive the message");
        }
        if !url.username().is_empty() || url.password().is_some() {
            return refuse("it carries credentials");
        }
        // Only the origin itself, optionally with a trailing slash.
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return refuse("it has a path, query or fragment");
        }
        Ok(Self(url.origin().ascii_serialization()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How the sign-in ended, as the opener sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageOutcome {
    SignedIn { server_id: String },
    Failed { server_id: Option<String>, error: String },
}

/// The HTML page for `outcome`, posting to `target`.
pub fn callback_page(outcome: &PageOutcome, target: &TargetOrigin) -> String {
    let (success, server_id, error, text) = match outcome {
        PageOutcome::SignedIn { server_id } => (true, Some(server_id.as_str()), None, "Signed in. You can close this window.".to_owned()),
        PageOutcome::Failed { server_id, error } => {
            (false, server_id.as_deref(), Some(error.as_str()), format!("The sign-in did not complete: {error}"))
        }
    };
    let message = json!({"type": MESSAGE_TYPE, "success": success, "server_id": server_id, "error": error});
    let data = script_json(&json!({"message": message, "targetOrigin": target.as_str()}).to_string());
    let csp = format!("default-src 'none'; script-src 'sha256-{}'; base-uri 'none'; form-action 'none'", script_hash());
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n<title>{title}</title>\n</head>\n<body>\n\
         <p>{text}</p>\n\
         <script type=\"application/json\" id=\"mcp-oauth-result\">{data}</script>\n\
         <script>{SCRIPT}</script>\n</body>\n</html>\n",
        title = if success { "Signed in" } else { "Sign-in failed" },
        text = html_text(&text),
    )
}

/// The CSP hash of the page's script.
fn script_hash() -> String {
    STANDARD.encode(Sha256::digest(SCRIPT.as_bytes()))
}

/// Text safe inside an HTML element.
fn html_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// JSON safe inside a script element: nothing in it can end the element or
/// open a comment, and JavaScript line terminators are escaped.
fn script_json(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data_of(page: &str) -> serde_json::Value {
        let start = page.find("id=\"mcp-oauth-result\">").unwrap() + "id=\"mcp-oauth-result\">".len();
        let end = start + page[start..].find("</script>").unwrap();
        serde_json::from_str(&page[start..end]).unwrap()
    }

    #[test]
    fn origins_are_origins() {
        assert_eq!(TargetOrigin::parse("https://app.example.com").unwrap().as_str(), "https://app.example.com");
        assert_eq!(TargetOrigin::parse("http://localhost:3000/").unwrap().as_str(), "http://localhost:3000");
        assert_eq!(TargetOrigin::parse("https://APP.example.com:443").unwrap().as_str(), "https://app.example.com");
        for bad in [
            "*",
            "",
            "null",
            "app.example.com",
            "https://app.example.com/cb",
            "https://a.example/?x=1",
            "https://a.example#f",
            "javascript:alert(1)",
            "data:text/html,x",
            "https://user:pw@a.example",
            "file:///etc/passwd",
        ] {
            assert!(TargetOrigin::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_page_posts_the_outcome_to_the_origin_only() {
        let target = TargetOrigin::parse("https://app.example.com").unwrap();
        let page = callback_page(&PageOutcome::SignedIn { server_id: "5f0c".into() }, &target);
        let data = data_of(&page);
        assert_eq!(data["targetOrigin"], "https://app.example.com");
        assert_eq!(data["message"], json!({"type": "mcp_oauth_done", "success": true, "server_id": "5f0c", "error": null}));
        assert!(page.contains(&format!("script-src 'sha256-{}'", script_hash())));
        assert!(!page.contains("postMessage(data.message, \"*\")") && !page.contains("'*'"));
    }

    #[test]
    fn reflected_text_cannot_break_out() {
        let target = TargetOrigin::parse("https://app.example.com").unwrap();
        let error = "MC004: </script><script>alert(1)</script> <img src=x onerror=alert(1)> \u{2028} & \"'";
        let page = callback_page(&PageOutcome::Failed { server_id: None, error: error.into() }, &target);
        assert_eq!(page.matches("<script").count(), 2, "{page}");
        assert_eq!(page.matches("</script>").count(), 2, "{page}");
        assert!(!page.contains("<img"), "{page}");
        assert!(!page.contains('\u{2028}'));
        assert_eq!(data_of(&page)["message"]["error"], error);
        assert_eq!(data_of(&page)["message"]["success"], false);
    }
}
