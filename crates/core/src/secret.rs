//! Credentials as values. A [`Secret`] never shows itself through `Debug`,
//! so no log line, panic message or error built with `{:?}` can carry a
//! token, verifier, client secret or header value by accident; reading it
//! takes an explicit [`Secret::expose`].

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the one place that must send or seal it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value_and_serde_keeps_the_plain_string() {
        let secret = Secret::new("rt-0123456789");
        assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
        assert_eq!(format!("{:?}", Some(&secret)), "Some(Secret(<redacted>))");
        assert_eq!(serde_json::to_string(&secret).unwrap(), "\"rt-0123456789\"");
        assert_eq!(serde_json::from_str::<Secret>("\"x\"").unwrap().expose(), "x");
    }
}
