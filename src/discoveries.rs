//! Recent discoveries (protected resource and authorization server
//! metadata), by server URL, kept per backend: a repeated sign-in start, or
//! an unattended row's next token, costs no discovery requests meanwhile.

use mcp_oauth_core::discovery::Discovered;
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a discovery is reused for the same server URL by this backend.
/// A server that moves to another authorization server is followed after
/// at most this long, or at once after a failure or `mcp_oauth_reset`.
const TTL: Duration = Duration::from_secs(300);

thread_local! {
    static DISCOVERIES: RefCell<HashMap<String, (Instant, Discovered)>> = RefCell::new(HashMap::new());
}

/// What this backend discovered for `url` less than [`TTL`] ago.
pub fn recent(url: &str) -> Option<Discovered> {
    DISCOVERIES.with(|d| {
        let mut cache = d.borrow_mut();
        cache.retain(|_, (at, _)| at.elapsed() < TTL);
        cache.get(url).map(|(_, found)| found.clone())
    })
}

/// Keeps a discovery that served; one already kept keeps its age.
pub fn keep(url: &str, found: &Discovered) {
    DISCOVERIES.with(|d| {
        d.borrow_mut().entry(url.to_owned()).or_insert_with(|| (Instant::now(), found.clone()));
    })
}

/// Forgets `url`'s discovery: the next use discovers again.
pub fn forget(url: &str) {
    DISCOVERIES.with(|d| {
        d.borrow_mut().remove(url);
    })
}
