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

/// Secrets shorter than this are not searched for: they would match
/// ordinary words, and no credential worth the name is that short.
const MIN_SECRET_LEN: usize = 6;
/// A secret echoed back is recognised by this many leading bytes (or all of
/// it, when shorter), so a copy the server cut short is removed as well.
const PROBE_LEN: usize = 12;

/// Removes every secret a request carried from text the server sent back:
/// each copy of a secret, and each copy of a leading part of one at least
/// [`PROBE_LEN`] bytes long (a server that truncates what it repeats), is
/// replaced by [`REDACTED`]. Run it before the text is cut or escaped, so a
/// truncation cannot hide a copy from it.
pub fn redact<'a>(text: &str, secrets: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = text.to_owned();
    for secret in secrets {
        if secret.len() < MIN_SECRET_LEN {
            continue;
        }
        out = redact_one(&out, secret);
    }
    out
}

fn redact_one(text: &str, secret: &str) -> String {
    let probe = &secret.as_bytes()[..secret.len().min(PROBE_LEN)];
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i + probe.len() <= bytes.len() {
        if &bytes[i..i + probe.len()] != probe || !text.is_char_boundary(i) {
            i += 1;
            continue;
        }
        let mut end = i + probe.len();
        let mut k = probe.len();
        while end < bytes.len() && k < secret.len() && bytes[end] == secret.as_bytes()[k] {
            end += 1;
            k += 1;
        }
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
    fn redaction_leaves_other_text_and_short_values() {
        assert_eq!(redact("nothing secret here", ["abcdefghijkl"]), "nothing secret here");
        assert_eq!(redact("key abc", ["abc"]), "key abc");
        assert_eq!(redact("ünïcødé sécret-välüe-42 ok", ["sécret-välüe-42"]), "ünïcødé [redacted] ok");
    }
}
