//! The skills extension (`io.modelcontextprotocol/skills`, SEP-2640): a
//! server lists skills (`skills/list`), each a `SKILL.md` with YAML front
//! matter and supporting files, every file with its SHA-256 digest and byte
//! size. Nothing is read on listing (hosts must not prefetch); a file is
//! read when the application asks for it, and used only once its size, its
//! digest and, for a `SKILL.md`, its front matter (field by field against
//! the listing's) match what the listing promised.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub const SKILLS_EXTENSION_ID: &str = "io.modelcontextprotocol/skills";

/// Largest skill file read (the extension's own bound on a file's size).
pub const MAX_SKILL_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// A file of a skill as its listing entry describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkillFile {
    pub uri: String,
    /// `sha256:` and 64 lowercase hex digits.
    pub digest: String,
    pub size: u64,
}

/// A skill as `skills/list` describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct SkillEntry {
    /// The skill's `SKILL.md`.
    pub uri: String,
    pub frontmatter: Map<String, Value>,
    /// Its files, each verifiable; None when the server lists them
    /// elsewhere (`"dynamic"`), so that none can be verified.
    pub files: Option<Vec<SkillFile>>,
}

/// Why a skill file is not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkillError {
    #[error("no skill listed by the server has the file {0}")]
    NotListed(String),
    #[error("the skill of {0} lists no files with digests, so none can be verified")]
    Unverifiable(String),
    #[error("{uri} has {got} bytes, but the listing says {expected}")]
    Size { uri: String, expected: u64, got: u64 },
    #[error("the SHA-256 digest of {uri} does not match the listing")]
    Digest { uri: String },
    #[error("the front matter of {uri} differs from the listing in {field}")]
    Frontmatter { uri: String, field: String },
    #[error("{uri}: {why}")]
    Invalid { uri: String, why: String },
}

fn is_digest(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// The entries of `skills/list` items; items that are not entries (no
/// `uri`) are left out.
pub fn entries(items: &[Value]) -> Vec<SkillEntry> {
    items
        .iter()
        .filter_map(|item| {
            let uri = item.get("uri")?.as_str()?.to_owned();
            let frontmatter = item.get("frontmatter").and_then(Value::as_object).cloned().unwrap_or_default();
            let files = item.get("resources").and_then(Value::as_array).map(|list| {
                list.iter()
                    .filter_map(|r| {
                        let digest = r.get("digest")?.as_str().filter(|d| is_digest(d))?.to_owned();
                        Some(SkillFile { uri: r.get("uri")?.as_str()?.to_owned(), digest, size: r.get("size")?.as_u64()? })
                    })
                    .collect()
            });
            Some(SkillEntry { uri, frontmatter, files })
        })
        .collect()
}

/// The skill that lists `uri`, and that file's entry.
pub fn find<'a>(entries: &'a [SkillEntry], uri: &str) -> Result<(&'a SkillEntry, &'a SkillFile), SkillError> {
    for entry in entries {
        let listed = entry.files.as_ref().and_then(|files| files.iter().find(|f| f.uri == uri));
        match listed {
            Some(file) => return Ok((entry, file)),
            None if entry.uri == uri => return Err(SkillError::Unverifiable(uri.to_owned())),
            None => {}
        }
    }
    Err(SkillError::NotListed(uri.to_owned()))
}

/// The bytes of `uri` in a `resources/read` result: its text as UTF-8, or
/// its blob decoded.
pub fn content_bytes(result: &Value, uri: &str) -> Result<Vec<u8>, SkillError> {
    let invalid = |why: &str| SkillError::Invalid { uri: uri.to_owned(), why: why.to_owned() };
    let contents = result.get("contents").and_then(Value::as_array).ok_or_else(|| invalid("the read returned no contents"))?;
    let item = contents
        .iter()
        .find(|c| c.get("uri").and_then(Value::as_str) == Some(uri))
        .or_else(|| (contents.len() == 1).then(|| &contents[0]))
        .ok_or_else(|| invalid("the read returned no content for this URI"))?;
    match (item.get("text").and_then(Value::as_str), item.get("blob").and_then(Value::as_str)) {
        (Some(text), _) => Ok(text.as_bytes().to_vec()),
        (None, Some(blob)) => STANDARD.decode(blob).map_err(|_| invalid("the blob is not base64")),
        _ => Err(invalid("the content has neither text nor blob")),
    }
}

/// Checks what was read against the listing: size first (a mismatch is a
/// verification failure whatever the digest), then the digest.
pub fn verify(file: &SkillFile, bytes: &[u8]) -> Result<(), SkillError> {
    if bytes.len() as u64 != file.size {
        return Err(SkillError::Size { uri: file.uri.clone(), expected: file.size, got: bytes.len() as u64 });
    }
    let digest = format!("sha256:{}", Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect::<String>());
    if digest != file.digest {
        return Err(SkillError::Digest { uri: file.uri.clone() });
    }
    Ok(())
}

/// Checks a `SKILL.md`'s YAML front matter against the listing's, field by
/// field: every field on either side must be on both, equal.
pub fn verify_frontmatter(entry: &SkillEntry, text: &str) -> Result<(), SkillError> {
    let found = frontmatter(text).map_err(|why| SkillError::Invalid { uri: entry.uri.clone(), why })?;
    let differs = |field: &str| SkillError::Frontmatter { uri: entry.uri.clone(), field: field.to_owned() };
    for (field, value) in &entry.frontmatter {
        if found.get(field) != Some(value) {
            return Err(differs(field));
        }
    }
    match found.keys().find(|k| !entry.frontmatter.contains_key(*k)) {
        Some(extra) => Err(differs(extra)),
        None => Ok(()),
    }
}

/// The YAML front matter of a `SKILL.md` (between a first line `---` and
/// the next `---` line), as JSON.
pub fn frontmatter(text: &str) -> Result<Map<String, Value>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.split_inclusive('\n');
    if lines.next().map(str::trim_end) != Some("---") {
        return Err("the file does not begin with front matter (---)".into());
    }
    let mut yaml = String::new();
    for line in lines {
        if line.trim_end() == "---" {
            let docs = yaml_rust2::YamlLoader::load_from_str(&yaml).map_err(|_| "the front matter is not YAML".to_owned())?;
            return match docs.first().map(to_json) {
                Some(Value::Object(map)) => Ok(map),
                None => Ok(Map::new()),
                Some(_) => Err("the front matter is not a mapping".into()),
            };
        }
        yaml.push_str(line);
    }
    Err("the front matter does not end (---)".into())
}

fn to_json(yaml: &yaml_rust2::Yaml) -> Value {
    use yaml_rust2::Yaml;
    match yaml {
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::Real(r) => {
            r.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(Value::Number).unwrap_or(Value::String(r.clone()))
        }
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        Yaml::Hash(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Yaml::String(s) => s.clone(),
                        other => to_json(other).to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        Yaml::Null | Yaml::BadValue | Yaml::Alias(_) => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SKILL: &str = "---\nname: pdf-processing\ndescription: Extract, fill, and assemble PDF documents\n---\n\nSkill body.\n";

    fn digest(s: &str) -> String {
        format!("sha256:{}", Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect::<String>())
    }

    fn listing(body: &str) -> Vec<SkillEntry> {
        entries(&[json!({
            "uri": "skill://pdf/SKILL.md",
            "frontmatter": {"name": "pdf-processing", "description": "Extract, fill, and assemble PDF documents"},
            "resources": [
                {"uri": "skill://pdf/SKILL.md", "digest": digest(body), "size": body.len()},
                {"uri": "skill://pdf/FORMS.md", "digest": digest("forms"), "size": 5},
                {"uri": "skill://pdf/bad.md", "digest": "md5:abc", "size": 1}
            ]
        })])
    }

    #[test]
    fn a_faithful_skill_passes_every_check() {
        let list = listing(SKILL);
        let (entry, file) = find(&list, "skill://pdf/SKILL.md").unwrap();
        assert_eq!(verify(file, SKILL.as_bytes()), Ok(()));
        assert_eq!(verify_frontmatter(entry, SKILL), Ok(()));
        let (_, forms) = find(&list, "skill://pdf/FORMS.md").unwrap();
        assert_eq!(verify(forms, b"forms"), Ok(()));
    }

    #[test]
    fn tampered_files_are_refused() {
        let list = listing(SKILL);
        let (entry, file) = find(&list, "skill://pdf/SKILL.md").unwrap();
        let evil = SKILL.replace("Skill body.", "Evil body!!");
        assert!(matches!(verify(file, evil.as_bytes()), Err(SkillError::Digest { .. })));
        let longer = format!("{SKILL}extra");
        assert!(matches!(verify(file, longer.as_bytes()), Err(SkillError::Size { expected, got, .. }) if got == expected + 5));
        // Digest and size re-made for the tampered file: the front matter
        // still gives it away.
        let exfil = SKILL.replace("Extract, fill, and assemble PDF documents", "Exfiltrate credentials");
        let list = listing(&exfil);
        let (entry2, file2) = find(&list, "skill://pdf/SKILL.md").unwrap();
        assert_eq!(verify(file2, exfil.as_bytes()), Ok(()));
        assert_eq!(
            verify_frontmatter(entry2, &exfil),
            Err(SkillError::Frontmatter { uri: "skill://pdf/SKILL.md".into(), field: "description".into() })
        );
        let extra = SKILL.replace("name: pdf-processing\n", "name: pdf-processing\nallowed-tools: Bash\n");
        assert!(matches!(verify_frontmatter(entry, &extra), Err(SkillError::Frontmatter { field, .. }) if field == "allowed-tools"));
        assert!(matches!(verify_frontmatter(entry, "no front matter"), Err(SkillError::Invalid { .. })));
    }

    #[test]
    fn only_listed_files_with_digests_are_read() {
        let list = listing(SKILL);
        assert!(matches!(find(&list, "skill://other/SKILL.md"), Err(SkillError::NotListed(_))));
        assert!(matches!(find(&list, "skill://pdf/bad.md"), Err(SkillError::NotListed(_))), "a malformed digest is no listing");
        let dynamic = entries(&[json!({"uri": "skill://d/SKILL.md", "frontmatter": {}, "resources": "dynamic"})]);
        assert!(matches!(find(&dynamic, "skill://d/SKILL.md"), Err(SkillError::Unverifiable(_))));
    }

    #[test]
    fn contents_are_text_or_blob() {
        let text = json!({"contents": [{"uri": "u", "text": "héllo"}]});
        assert_eq!(content_bytes(&text, "u").unwrap(), "héllo".as_bytes());
        let blob = json!({"contents": [{"uri": "u", "blob": STANDARD.encode([0u8, 255])}]});
        assert_eq!(content_bytes(&blob, "u").unwrap(), vec![0u8, 255]);
        assert!(content_bytes(&json!({"contents": []}), "u").is_err());
        assert_eq!(frontmatter("---\nname: x\nmetadata:\n  v: 2\n---\nbody").unwrap()["metadata"]["v"], 2);
    }
}
