//! Text that reaches a user: messages made into sentences, remote text
//! escaped and bounded, and secrets removed from whatever a remote party
//! says back.

/// Longest text kept from a remote party.
pub const REMOTE_TEXT_CHARS: usize = 300;
/// Longest message kept in `last_error` or an error report.
pub const MESSAGE_CHARS: usize = 1000;
/// What a redacted secret is replaced by.
pub const REDACTED: &str = "[redacted]";

/// `text` as a sentence: capital first letter, final period.
pub fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => {
            let mut out: String = first.to_uppercase().collect();
            out.push_str(chars.as_str());
            if !out.ends_with('.') {
                out.push('.');
            }
            out
        }
        None => String::new(),
    }
}

/// Text from a remote party, at most [`REMOTE_TEXT_CHARS`] characters, with
/// control characters and markup-significant characters escaped (`\u{3c}`
/// for `<`), so it is never reflected raw into an application's page or log.
pub fn escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().take(REMOTE_TEXT_CHARS) {
        if c.is_control() || matches!(c, '<' | '>' | '&' | '"' | '\'' | '\\' | '`') {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// Keeps text printable and bounded: control characters are escaped, and
/// anything longer than [`MESSAGE_CHARS`] characters is cut.
pub fn sanitise(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MESSAGE_CHARS));
    for (count, c) in text.chars().enumerate() {
        if count >= MESSAGE_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The fewest characters a secret may have: a shorter one could not be
/// removed from what servers say back without removing ordinary words too,
/// so it is refused where it comes in (header values, client secrets,
/// tokens), and every secret that gets further is redacted whatever its
/// length.
pub const MIN_SECRET_LEN: usize = 8;
/// A secret echoed back is recognised by this many leading bytes (or all of
/// it, when shorter), so a copy the server cut short is removed as well.
const PROBE_LEN: usize = 12;

/// Removes every secret a request carried from text the server sent back:
/// each copy of a secret in each form a server may echo it in
/// ([`echoed_forms`]), and each copy of a leading part of one at least
/// [`PROBE_LEN`] bytes long (a server that truncates what it repeats), is
/// replaced by [`REDACTED`]. Run it before the text is cut or escaped, so a
/// truncation cannot hide a copy from it.
pub fn redact<'a>(text: &str, secrets: impl IntoIterator<Item = &'a str>) -> String {
    let mut forms: Vec<String> = secrets.into_iter().filter(|s| !s.is_empty()).flat_map(echoed_forms).collect();
    forms.sort();
    forms.dedup();
    redact_all(text, &forms)
}

/// The forms in which a server may say a secret back: as sent; without its
/// authentication scheme (`Bearer sk-…` echoed as `sk-…`), and for `Basic`
/// the `user:password` it encodes and the password; percent-encoded as a
/// form body (space as `+`) or a URL (`%20`) would carry it, with upper- or
/// lower-case hex; and escaped as a JSON string (also with `/` as `\/`).
pub fn echoed_forms(secret: &str) -> Vec<String> {
    let mut plain = vec![secret.to_owned()];
    if let Some((scheme, credential)) = secret.split_once(' ') {
        let credential = credential.trim();
        if !credential.is_empty() {
            plain.push(credential.to_owned());
        }
        if scheme.eq_ignore_ascii_case("basic") {
            use base64::Engine as _;
            if let Some(decoded) = base64::engine::general_purpose::STANDARD.decode(credential).ok().and_then(|b| String::from_utf8(b).ok())
            {
                if let Some((_, password)) = decoded.split_once(':') {
                    plain.push(password.to_owned());
                }
                plain.push(decoded);
            }
        }
    }
    let mut forms = Vec::new();
    for p in plain.into_iter().filter(|p| !p.is_empty()) {
        let form: String = url::form_urlencoded::byte_serialize(p.as_bytes()).collect();
        let url_style = form.replace('+', "%20");
        let json = serde_json::to_string(&p).expect("a string serialises");
        let json = json[1..json.len() - 1].to_owned();
        forms.extend([json.replace('/', "\\/"), json, lower_hex(&form), lower_hex(&url_style), form, url_style, p]);
    }
    forms
}

/// `%2F` as `%2f`.
fn lower_hex(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut hex_left = 0;
    for c in encoded.chars() {
        if hex_left > 0 {
            out.push(c.to_ascii_lowercase());
            hex_left -= 1;
        } else {
            hex_left = if c == '%' { 2 } else { 0 };
            out.push(c);
        }
    }
    out
}

/// Replaces, at each position, the longest match of any form there: a copy
/// of it, or of a leading part of at least [`PROBE_LEN`] bytes.
fn redact_all(text: &str, forms: &[String]) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if !text.is_char_boundary(i) {
            i += 1;
            continue;
        }
        let longest = forms.iter().filter_map(|form| match_at(bytes, i, form.as_bytes())).max();
        let Some(mut end) = longest else {
            i += 1;
            continue;
        };
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        out.push_str(&text[copied..i]);
        out.push_str(REDACTED);
        copied = end;
        i = end;
    }
    out.push_str(&text[copied..]);
    out
}

/// Where a copy of `form` (or of a leading part of it, at least its probe)
/// that starts at `i` ends.
fn match_at(bytes: &[u8], i: usize, form: &[u8]) -> Option<usize> {
    let probe = form.len().min(PROBE_LEN);
    if i + probe > bytes.len() || bytes[i..i + probe] != form[..probe] {
        return None;
    }
    let matched = bytes[i..].iter().zip(form).take_while(|(a, b)| a == b).count();
    Some(i + matched)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences() {
        assert_eq!(sentence("the row is gone"), "The row is gone.");
        assert_eq!(sentence("Done."), "Done.");
        assert_eq!(sentence(""), "");
    }

    #[test]
    fn escape_bounds_and_escapes() {
        assert_eq!(escape("<b>"), "\\u{3c}b\\u{3e}");
        assert_eq!(escape(&"x".repeat(500)).len(), REMOTE_TEXT_CHARS);
    }

    #[test]
    fn sanitise_escapes_and_bounds() {
        assert_eq!(sanitise("a\nb\u{0}"), "a\\nb\\u{0}");
        assert_eq!(sanitise(&"x".repeat(5000)).chars().count(), MESSAGE_CHARS + 1);
        assert_eq!(sanitise(&"é".repeat(5000)).chars().count(), MESSAGE_CHARS + 1);
    }

    #[test]
    fn redaction_removes_whole_and_truncated_copies() {
        let token = "at-17-c2VjcmV0LXRva2VuLXZhbHVl";
        let text = format!("bad token Bearer {token}; again {token}, cut {}", &token[..20]);
        let shown = redact(&text, [token]);
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
        assert_eq!(shown.matches(REDACTED).count(), 3, "{shown}");
        assert!(shown.starts_with("bad token Bearer [redacted]; again [redacted], cut [redacted]"));
    }

    #[test]
    fn redaction_leaves_other_text() {
        assert_eq!(redact("nothing secret here", ["abcdefghijkl"]), "nothing secret here");
        assert_eq!(redact("ünïcødé sécret-välüe-42 ok", ["sécret-välüe-42"]), "ünïcødé [redacted] ok");
    }

    #[test]
    fn secrets_are_redacted_in_every_form_a_server_echoes_them() {
        let refresh = "rt/0aB+cD=eF/gH+iJ==";
        let header = "Bearer sk-live/4f+2a=";
        let basic = "Basic Y2xpZW50LWlkOmNsaWVudC1zZWNyZXQvKz0="; // client-id:client-secret/+=
        let secrets = [refresh, header, basic];
        for echoed in [
            "refresh_token=rt%2F0aB%2BcD%3DeF%2FgH%2BiJ%3D%3D&grant_type=refresh_token",
            "rt%2f0aB%2bcD%3deF%2fgH%2biJ%3d%3d",
            r#"{"refresh_token":"rt\/0aB+cD=eF\/gH+iJ=="}"#,
            "token rt/0aB+cD=eF/gH+iJ== refused",
            "bad key sk-live/4f+2a= given",
            "bad key sk-live%2F4f%2B2a%3D given",
            "header Bearer sk-live/4f+2a=",
            "client client-id:client-secret/+= refused",
            "secret client-secret/+= refused",
            "secret client-secret%2F%2B%3D refused",
            "basic Y2xpZW50LWlkOmNsaWVudC1zZWNyZXQvKz0=",
        ] {
            let shown = redact(echoed, secrets);
            for leak in ["0aB", "sk-live", "client-secret", "Y2xpZW50", "4f%2B2a", "4f+2a"] {
                assert!(!shown.contains(leak), "{echoed} → {shown}");
            }
            assert!(shown.contains(REDACTED), "{echoed} → {shown}");
        }
        // Short credentials are redacted too (none shorter than the minimum
        // gets this far).
        assert_eq!(redact("the key k-123456 was refused", ["k-123456"]), "the key [redacted] was refused");
    }
}
