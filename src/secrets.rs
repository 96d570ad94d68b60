//! The one place where secret column values are produced and read back:
//! tokens (`oauth_tokens`), the PKCE verifier (`oauth_code_verifier`) and
//! the client secret (`oauth_client_secret`). Every write of a secret goes
//! through `seal_*`, every read through `open_*`, so encryption at rest is
//! added here and nowhere else. Today the values are stored as they are,
//! protected by column privileges: no application role can read them.

use mcp_oauth_core::oauth::TokenSet;

pub fn seal_tokens(tokens: &TokenSet) -> Vec<u8> {
    serde_json::to_vec(tokens).expect("tokens serialise")
}

pub fn open_tokens(stored: &[u8]) -> Option<TokenSet> {
    serde_json::from_slice(stored).ok()
}

pub fn seal_text(plain: &str) -> String {
    plain.to_owned()
}

pub fn open_text(stored: &str) -> String {
    stored.to_owned()
}
