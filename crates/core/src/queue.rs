//! The pure decisions of the durable call queue: may a failed call be made
//! again, when, and which queued calls may start now under the in-flight
//! caps. The workers (`src/queue`) act on them.
//!
//! The rule (invariant 12): a call is made at most once, unless its request
//! surely did not reach the server (the connection was never made, or the
//! server said it did not take it: 429, 503), or the tool says repeating it
//! is harmless (`idempotentHint` or `readOnlyHint`).

use crate::mcp::McpError;
use crate::net::NetError;
use serde_json::Value;
use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

/// How far a failed request went, as far as repeating it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// It surely did not reach the tool; the server may ask for a pause.
    NotReached { retry_after: Option<Duration> },
    /// It may have: a timeout, a connection lost while the answer came, a
    /// server error.
    Unknown,
    /// A definite answer (an error the server or the policy gave, a
    /// missing sign-in): asking again would get the same.
    Final,
}

/// How far a request that failed with `error` went.
pub fn reach(error: &McpError) -> Reach {
    match error {
        McpError::Net(NetError::Connect { .. }) => Reach::NotReached { retry_after: None },
        McpError::Net(NetError::Blocked { .. } | NetError::TooLarge { .. }) => Reach::Final,
        McpError::Net(NetError::Timeout { .. } | NetError::Transport { .. }) => Reach::Unknown,
        McpError::Http { status: 429 | 503, retry_after, .. } => Reach::NotReached { retry_after: retry_after.map(Duration::from_secs) },
        McpError::Http { status, .. } if *status >= 500 => Reach::Unknown,
        // A session the server ended before it took the request was already
        // made again once, in a new session; one ended mid-request may
        // have been carried out.
        McpError::SessionEnded { mid_request: true, .. } => Reach::Unknown,
        _ => Reach::Final,
    }
}

/// Whether a tool's annotations say calling it again is harmless.
pub fn repeatable(annotations: Option<&Value>) -> bool {
    let hint = |name: &str| annotations.and_then(|a| a.get(name)).and_then(Value::as_bool) == Some(true);
    hint("idempotentHint") || hint("readOnlyHint")
}

/// How often and how soon calls are made again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The pause before the second attempt; doubled for each after.
    pub base: Duration,
    /// The longest pause of our own choosing.
    pub cap: Duration,
    /// The longest pause a server's Retry-After is followed for; a server
    /// that asks for more fails the call.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(15 * 60),
        }
    }
}

/// What to do with a call whose attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Retry { after: Duration },
    Fail,
}

impl RetryPolicy {
    /// The pause before attempt `attempts + 1`: exponential, capped, with
    /// half of it random (`jitter` in [0, 1)) so that calls failed together
    /// do not come back together.
    pub fn backoff(&self, attempts: u32, jitter: f64) -> Duration {
        let exponent = attempts.saturating_sub(1).min(20);
        let full = self.base.saturating_mul(1 << exponent).min(self.cap);
        full / 2 + full.mul_f64(jitter.clamp(0.0, 1.0) / 2.0)
    }

    /// A call that failed after `attempts` attempts, its request having
    /// gone as far as `reach`; `repeatable` when the tool says so.
    pub fn decide(&self, reach: Reach, repeatable: bool, attempts: u32, jitter: f64) -> Decision {
        if attempts >= self.max_attempts {
            return Decision::Fail;
        }
        match reach {
            Reach::NotReached { retry_after: Some(asked) } if asked > self.max_retry_after => Decision::Fail,
            Reach::NotReached { retry_after: Some(asked) } => Decision::Retry { after: asked },
            Reach::NotReached { retry_after: None } => Decision::Retry { after: self.backoff(attempts, jitter) },
            Reach::Unknown if repeatable => Decision::Retry { after: self.backoff(attempts, jitter) },
            Reach::Unknown | Reach::Final => Decision::Fail,
        }
    }

    /// A call found running after its worker died (a crash, `kill -9`):
    /// whether its request went out is unknown.
    pub fn after_interruption(&self, repeatable: bool, attempts: u32) -> Decision {
        self.decide(Reach::Unknown, repeatable, attempts, 0.0)
    }
}

/// The caps on calls in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// In all (for one worker: its share of the global cap).
    pub total: usize,
    /// For one server row.
    pub per_server: usize,
}

/// How many due calls a worker with `room` free places looks at in one
/// claim: more than it can take, so that calls to servers at their cap or
/// paused do not hide the others behind them; bounded, as they are locked
/// while the claim's transaction lasts.
pub fn claim_window(room: usize) -> usize {
    room.saturating_mul(4).clamp(1, 1000)
}

/// Of `candidates` (oldest first, each by its server), the ones that may
/// start now, given what is in flight and which servers asked for a pause.
pub fn admit<S: Eq + Hash + Copy>(candidates: &[S], in_flight: &HashMap<S, usize>, paused: &dyn Fn(&S) -> bool, caps: Caps) -> Vec<usize> {
    let mut running: HashMap<S, usize> = in_flight.clone();
    let mut total: usize = in_flight.values().sum();
    let mut admitted = Vec::new();
    for (index, server) in candidates.iter().enumerate() {
        if total >= caps.total {
            break;
        }
        let count = running.entry(*server).or_insert(0);
        if *count >= caps.per_server || paused(server) {
            continue;
        }
        *count += 1;
        total += 1;
        admitted.push(index);
    }
    admitted
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn http(status: u16, retry_after: Option<u64>) -> McpError {
        McpError::Http { host: "h".into(), status, retry_after }
    }

    #[test]
    fn what_surely_did_not_reach_the_server() {
        assert_eq!(reach(&McpError::Net(NetError::Connect { host: "h".into() })), Reach::NotReached { retry_after: None });
        assert_eq!(reach(&http(429, Some(7))), Reach::NotReached { retry_after: Some(Duration::from_secs(7)) });
        assert_eq!(reach(&http(503, None)), Reach::NotReached { retry_after: None });
    }

    #[test]
    fn what_may_have() {
        assert_eq!(reach(&McpError::Net(NetError::Timeout { host: "h".into() })), Reach::Unknown);
        assert_eq!(reach(&McpError::Net(NetError::Transport { host: "h".into(), detail: "x".into() })), Reach::Unknown);
        assert_eq!(reach(&http(500, None)), Reach::Unknown);
        assert_eq!(reach(&http(502, None)), Reach::Unknown);
        assert_eq!(reach(&McpError::SessionEnded { host: "h".into(), mid_request: true }), Reach::Unknown);
    }

    #[test]
    fn what_is_final() {
        assert_eq!(reach(&McpError::Net(NetError::Blocked { host: "h".into(), reason: "r".into() })), Reach::Final);
        assert_eq!(reach(&McpError::Net(NetError::TooLarge { host: "h".into(), limit: 1 })), Reach::Final);
        assert_eq!(reach(&http(404, None)), Reach::Final);
        assert_eq!(reach(&http(499, None)), Reach::Final);
        assert_eq!(reach(&McpError::Rpc { host: "h".into(), code: -32602, message: "m".into() }), Reach::Final);
        assert_eq!(reach(&McpError::SessionEnded { host: "h".into(), mid_request: false }), Reach::Final);
        assert_eq!(reach(&McpError::Unauthorized { host: "h".into(), challenge: None, dpop_nonce: None }), Reach::Final);
        // Asking again with the same clock gets the same refusal.
        assert_eq!(reach(&McpError::ProofRefused { host: "h".into(), description: None }), Reach::Final);
    }

    #[test]
    fn repeatable_tools() {
        assert!(repeatable(Some(&json!({"idempotentHint": true}))));
        assert!(repeatable(Some(&json!({"readOnlyHint": true}))));
        assert!(!repeatable(Some(&json!({"idempotentHint": false, "destructiveHint": true}))));
        assert!(!repeatable(Some(&json!({"idempotentHint": "true"}))));
        assert!(!repeatable(None));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_half_of_it_random() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1, 0.0), Duration::from_millis(250));
        assert_eq!(p.backoff(1, 0.999_999), Duration::from_millis(250) + Duration::from_millis(250).mul_f64(0.999_999));
        assert_eq!(p.backoff(2, 0.0), Duration::from_millis(500));
        assert_eq!(p.backoff(3, 0.0), Duration::from_secs(1));
        assert_eq!(p.backoff(30, 0.0), Duration::from_secs(30));
        assert_eq!(p.backoff(30, 1.0), Duration::from_secs(60));
        assert_eq!(p.backoff(0, 0.0), Duration::from_millis(250));
    }

    #[test]
    fn decisions() {
        let p = RetryPolicy::default();
        let not_reached = Reach::NotReached { retry_after: None };
        assert_eq!(p.decide(not_reached, false, 1, 0.0), Decision::Retry { after: Duration::from_millis(250) });
        assert_eq!(p.decide(not_reached, false, 5, 0.0), Decision::Fail);
        assert_eq!(p.decide(not_reached, false, 4, 0.0), Decision::Retry { after: Duration::from_secs(2) });
        let asked = Reach::NotReached { retry_after: Some(Duration::from_secs(3)) };
        assert_eq!(p.decide(asked, false, 1, 0.5), Decision::Retry { after: Duration::from_secs(3) });
        let too_long = Reach::NotReached { retry_after: Some(Duration::from_secs(3600)) };
        assert_eq!(p.decide(too_long, true, 1, 0.0), Decision::Fail);
        let at_max = Reach::NotReached { retry_after: Some(p.max_retry_after) };
        assert_eq!(p.decide(at_max, false, 1, 0.0), Decision::Retry { after: p.max_retry_after });
        assert_eq!(p.decide(Reach::Unknown, false, 1, 0.0), Decision::Fail);
        assert_eq!(p.decide(Reach::Unknown, true, 1, 0.0), Decision::Retry { after: Duration::from_millis(250) });
        assert_eq!(p.decide(Reach::Final, true, 1, 0.0), Decision::Fail);
        assert_eq!(p.after_interruption(false, 1), Decision::Fail);
        assert_eq!(p.after_interruption(true, 1), Decision::Retry { after: Duration::from_millis(250) });
        assert_eq!(p.after_interruption(true, 5), Decision::Fail);
    }

    #[test]
    fn claim_windows() {
        assert_eq!(claim_window(0), 1);
        assert_eq!(claim_window(1), 4);
        assert_eq!(claim_window(100), 400);
        assert_eq!(claim_window(10_000), 1000);
        assert_eq!(claim_window(usize::MAX), 1000);
    }

    #[test]
    fn admission_under_the_caps() {
        let caps = Caps { total: 4, per_server: 2 };
        let none = |_: &u8| false;
        assert_eq!(admit(&[1, 1, 1, 2, 2, 3], &HashMap::new(), &none, caps), vec![0, 1, 3, 4]);
        let busy = HashMap::from([(1u8, 2usize)]);
        assert_eq!(admit(&[1, 2, 3, 2, 3], &busy, &none, caps), vec![1, 2]);
        let paused = |s: &u8| *s == 2;
        assert_eq!(admit(&[2, 2, 3, 1], &HashMap::new(), &paused, caps), vec![2, 3]);
        let full = HashMap::from([(1u8, 2usize), (2, 2)]);
        assert!(admit(&[3], &full, &none, caps).is_empty());
        assert!(admit::<u8>(&[], &HashMap::new(), &none, caps).is_empty());
    }
}
