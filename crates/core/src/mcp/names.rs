//! Tool names unique across all of a user's servers and valid as an LLM
//! function name (`^[A-Za-z0-9_-]{1,64}$`, what the OpenAI and Anthropic
//! APIs accept): `<slug>__<tool>`. Slugs are `^[a-z0-9_-]{1,24}$` already;
//! a tool name that is not valid as it is, or too long, is written with `_`
//! for each other character, cut, and ends with 8 hex digits of the SHA-256
//! of the original, so two tools of one server never share a name.

use sha2::{Digest, Sha256};

pub const MAX_QUALIFIED_LEN: usize = 64;
const SEPARATOR: &str = "__";

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// The name under which `tool` of the server `slug` is offered.
pub fn qualified_tool_name(slug: &str, tool: &str) -> String {
    let plain = format!("{slug}{SEPARATOR}{tool}");
    if plain.len() <= MAX_QUALIFIED_LEN && !tool.is_empty() && tool.chars().all(is_name_char) {
        return plain;
    }
    let digest = Sha256::digest(tool.as_bytes());
    let suffix: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    let cleaned: String = tool.chars().map(|c| if is_name_char(c) { c } else { '_' }).collect();
    let room = MAX_QUALIFIED_LEN - slug.len() - SEPARATOR.len() - 1 - suffix.len();
    let cut: String = cleaned.chars().take(room).collect();
    format!("{slug}{SEPARATOR}{cut}_{suffix}")
}

/// The slug among `slugs` that `qualified` was made with (the longest that
/// fits, should one slug extend another), and the rest of the name.
pub fn route<'a, 'q>(qualified: &'q str, slugs: impl IntoIterator<Item = &'a str>) -> Option<(&'a str, &'q str)> {
    slugs
        .into_iter()
        .filter(|slug| qualified.len() > slug.len() + SEPARATOR.len() && qualified.starts_with(slug))
        .filter(|slug| qualified[slug.len()..].starts_with(SEPARATOR))
        .max_by_key(|slug| slug.len())
        .map(|slug| (slug, &qualified[slug.len() + SEPARATOR.len()..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn valid(name: &str) -> bool {
        !name.is_empty() && name.len() <= MAX_QUALIFIED_LEN && name.chars().all(is_name_char)
    }

    #[test]
    fn plain_names_stay_readable() {
        assert_eq!(qualified_tool_name("github", "create_issue"), "github__create_issue");
        assert_eq!(qualified_tool_name("linear-2", "list-teams"), "linear-2__list-teams");
    }

    #[test]
    fn other_names_are_cleaned_cut_and_kept_apart() {
        let dotted = qualified_tool_name("fs", "read.file");
        let underscored = qualified_tool_name("fs", "read_file");
        assert!(dotted.starts_with("fs__read_file_") && valid(&dotted), "{dotted}");
        assert_ne!(dotted, underscored);
        let long = qualified_tool_name(&"s".repeat(24), &"t".repeat(200));
        assert!(valid(&long) && long.len() == MAX_QUALIFIED_LEN, "{long}");
        assert_ne!(long, qualified_tool_name(&"s".repeat(24), &"t".repeat(201)));
        assert!(valid(&qualified_tool_name("x", "")));
        assert!(valid(&qualified_tool_name("x", "café ☕")));
    }

    #[test]
    fn routing_finds_the_server() {
        let slugs = ["github", "git", "a__b", "a"];
        assert_eq!(route("github__create_issue", slugs), Some(("github", "create_issue")));
        assert_eq!(route("git__log", slugs), Some(("git", "log")));
        assert_eq!(route("a__b__c", slugs), Some(("a__b", "c")));
        assert_eq!(route("gitlab__x", slugs), None);
        assert_eq!(route("github__", slugs), None);
    }

    proptest! {
        #[test]
        fn every_name_is_valid_and_routes_back(slug in "[a-z0-9_-]{1,24}", tool in "\\PC{0,100}") {
            let name = qualified_tool_name(&slug, &tool);
            prop_assert!(valid(&name), "{}", name);
            prop_assert_eq!(route(&name, [slug.as_str()]).map(|(s, _)| s), Some(slug.as_str()));
        }
    }
}
