// `#[pg_test]`s for the glue: run inside a real backend, each in its own
// transaction that is rolled back.

use crate::error::Error;
use mcp_oauth_core::state::StateError;
use pgrx::prelude::*;

/// Runs `sql` and returns "ok" or "SQLSTATE: message", caught in a
/// subtransaction, so a test sees exactly what a plpgsql caller would.
fn outcome(sql: &str) -> String {
    Spi::run(
        "CREATE OR REPLACE FUNCTION pg_temp.outcome(q text) RETURNS text LANGUAGE plpgsql AS $f$
         BEGIN EXECUTE q; RETURN 'ok';
         EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $f$",
    )
    .unwrap();
    Spi::get_one_with_args::<String>("SELECT pg_temp.outcome($1)", &[sql.into()]).unwrap().unwrap()
}

fn one(sql: &str) -> Option<String> {
    Spi::get_one::<String>(sql).unwrap()
}

#[pg_test]
fn identity_defaults_to_the_current_role() {
    assert_eq!(one("SELECT mcp_current_user_id()"), one("SELECT current_user::text"));
}

#[pg_test]
fn identity_from_a_request_setting() {
    Spi::run("SET LOCAL mcp_oauth.identity = 'setting:app.user_id'").unwrap();
    assert_eq!(outcome("SELECT mcp_current_user_id()"), "28000: no user identity for mcp_oauth");
    Spi::run("SET LOCAL app.user_id = ''").unwrap();
    assert_eq!(outcome("SELECT mcp_current_user_id()"), "28000: no user identity for mcp_oauth");
    Spi::run("SET LOCAL app.user_id = 'user-42'").unwrap();
    assert_eq!(one("SELECT mcp_current_user_id()").as_deref(), Some("user-42"));
    Spi::run("SET LOCAL app.user_id = E'a\\nb'").unwrap();
    assert_eq!(outcome("SELECT mcp_current_user_id()"), "28000: the user identity for mcp_oauth is not usable");
}

#[pg_test]
fn identity_from_a_jwt_claim() {
    Spi::run("SET LOCAL mcp_oauth.identity = 'jwt_claim:sub'").unwrap();
    assert_eq!(outcome("SELECT mcp_current_user_id()"), "28000: no user identity for mcp_oauth");
    Spi::run(r#"SET LOCAL request.jwt.claims = '{"sub":"8d0f","role":"authenticated"}'"#).unwrap();
    assert_eq!(one("SELECT mcp_current_user_id()").as_deref(), Some("8d0f"));
    Spi::run(r#"SET LOCAL request.jwt.claims = '{"role":"anon"}'"#).unwrap();
    assert_eq!(outcome("SELECT mcp_current_user_id()"), "28000: no user identity for mcp_oauth");
    Spi::run(r#"SET LOCAL request.jwt.claims = 'not json'"#).unwrap();
    assert_eq!(outcome("SELECT mcp_current_user_id()"), "28000: the user identity for mcp_oauth is not usable");
}

#[pg_test]
fn an_invalid_identity_source_is_refused_when_set() {
    assert_eq!(
        outcome("SET LOCAL mcp_oauth.identity = 'header:x'"),
        "22023: invalid value for parameter \"mcp_oauth.identity\": \"header:x\""
    );
    assert_eq!(one("SHOW mcp_oauth.identity").as_deref(), Some("role"));
}

#[pg_test]
fn settings_are_checked_and_secrets_never_echoed() {
    // Secrets are accepted by SET (an error would repeat them) and checked on use.
    assert_eq!(outcome("SET LOCAL mcp_oauth.state_secret = 'hunter2'"), "ok");
    let report = crate::state::issue("alice", uuid::Uuid::nil()).unwrap_err().report();
    assert_eq!(report.sqlstate, "MC008");
    assert_eq!(report.detail.as_deref(), Some("The state secret is 7 bytes long; at least 32 are required."));
    assert!(outcome("SET LOCAL mcp_oauth.redirect_uri = 'https://app.example/cb#x'").starts_with("22023"));
    assert!(outcome("SET LOCAL mcp_oauth.client_metadata_url = 'http://app.example/c.json'").starts_with("22023"));
    assert!(outcome("SET LOCAL mcp_oauth.allowed_hosts = 'a.example, http://b'").starts_with("22023"));
    assert_eq!(outcome("SET LOCAL mcp_oauth.state_ttl = '5min'"), "ok");
    assert_eq!(one("SHOW mcp_oauth.state_ttl").as_deref(), Some("5min"));
    assert_eq!(outcome("SET LOCAL mcp_oauth.max_response_bytes = '1MB'"), "ok");
    assert_eq!(outcome("SET LOCAL mcp_oauth.request_timeout = '90s'"), "ok");
    assert_eq!(outcome("SET LOCAL mcp_oauth.unknown_thing = 'x'"),
        "42602: invalid configuration parameter name \"mcp_oauth.unknown_thing\"");
}

#[pg_test]
fn state_needs_a_long_enough_secret() {
    let user = "alice";
    let server = uuid::Uuid::new_v4();
    let missing = crate::state::issue(user, server).unwrap_err();
    assert!(matches!(missing, Error::State(StateError::SecretMissing)));
    let report = missing.report();
    assert_eq!(report.sqlstate, "MC008");
    assert!(report.hint.unwrap().contains("mcp_oauth.state_secret"));

    Spi::run("SET LOCAL mcp_oauth.state_secret = '0123456789abcdef0123456789abcdef'").unwrap();
    Spi::run("SET LOCAL mcp_oauth.state_ttl = 60").unwrap();
    let (token, claims) = crate::state::issue(user, server).unwrap();
    assert_eq!(claims.expires_at - claims.issued_at, 60);
    assert_eq!(crate::state::verify(&token).unwrap(), claims);

    let tampered = format!("{}x", &token[..token.len() - 1]);
    let err = crate::state::verify(&tampered).unwrap_err();
    assert_eq!(err.report().sqlstate, "MC002");

    Spi::run("SET LOCAL mcp_oauth.state_secret = 'ffffffffffffffffffffffffffffffffffff'").unwrap();
    assert_eq!(crate::state::verify(&token).unwrap_err().report().sqlstate, "MC002");
}

#[pg_test]
fn validation_helpers_name_the_problem_not_the_value() {
    assert_eq!(one("SELECT mcp_oauth_url_problem('https://mcp.example.com/mcp')"), None);
    assert_eq!(
        one("SELECT mcp_oauth_url_problem('javascript:alert(1)')").as_deref(),
        Some("The URL scheme must be http or https.")
    );
    let problem = one(r#"SELECT mcp_oauth_headers_problem('{"X-Key": "sk-secret\r\nX: y"}')"#).unwrap();
    assert!(problem.contains("X-Key") && !problem.contains("sk-secret"), "{problem}");
    assert_eq!(
        Spi::get_one::<Vec<String>>(r#"SELECT mcp_oauth_header_keys('{"b":"1","A":"2"}')"#).unwrap(),
        Some(vec!["A".to_owned(), "b".to_owned()])
    );
    assert_eq!(one("SELECT mcp_oauth_slug('My GitHub (work)')").as_deref(), Some("my-github-work"));
}

#[pg_test]
fn our_errors_carry_their_sqlstate_detail_and_hint_through_plpgsql() {
    Spi::run("SET LOCAL mcp_oauth.identity = 'setting:app.user_id'").unwrap();
    let caught = one(
        "DO $$ BEGIN PERFORM mcp_current_user_id(); EXCEPTION WHEN SQLSTATE '28000' THEN
           DECLARE d text; h text; BEGIN GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
           PERFORM set_config('test.caught', d || ' | ' || h, true); END; END $$;
         SELECT current_setting('test.caught')",
    );
    let caught = caught.unwrap();
    assert!(caught.starts_with("The setting app.user_id is not set or empty. | "), "{caught}");
    assert!(caught.contains("SET LOCAL app.user_id"), "{caught}");
    // The backend is fine afterwards.
    assert_eq!(one("SELECT 'still here'").as_deref(), Some("still here"));
}

#[pg_test]
fn expired_and_future_states_are_refused_through_sql() {
    use mcp_oauth_core::state::{sign, StateClaims, StateSecret};
    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    Spi::run(&format!("SET LOCAL mcp_oauth.state_secret = '{SECRET}'")).unwrap();
    let secret = StateSecret::new(Some(SECRET)).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    for (issued_at, why) in [(now - 1000, StateError::Expired), (now + 3600, StateError::NotYetValid)] {
        let token = sign(&secret, &StateClaims::new("alice", uuid::Uuid::new_v4(), issued_at, 300)).unwrap();
        let err = crate::state::verify(&token).unwrap_err();
        assert!(matches!(&err, Error::State(e) if *e == why), "{err:?}");
        assert_eq!(outcome(&format!("SELECT mcp_oauth_finish('{token}', 'code')")), "MC002: invalid OAuth state");
    }
}

#[pg_test]
fn threads_we_start_block_every_signal_from_their_first_instruction() {
    // The thread's first act is to read its own signal mask: whatever it
    // sees was inherited at creation, before any code of its own could run.
    let (send, receive) = std::sync::mpsc::channel();
    crate::runtime::spawn_without_signals(Box::new(move || {
        // SAFETY: reads this thread's own mask.
        let blocked = unsafe {
            let mut mask: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut mask);
            [libc::SIGINT, libc::SIGTERM, libc::SIGQUIT, libc::SIGHUP, libc::SIGALRM, libc::SIGUSR1, libc::SIGUSR2, libc::SIGCHLD]
                .iter()
                .all(|&s| libc::sigismember(&mask, s) == 1)
        };
        let _ = send.send(blocked);
    }))
    .unwrap();
    assert!(receive.recv().unwrap(), "a signal was deliverable to the new thread");
    // ...while the backend's own thread has its mask back.
    // SAFETY: reads this thread's own mask.
    let backend_blocks_sigint = unsafe {
        let mut mask: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut mask);
        libc::sigismember(&mask, libc::SIGINT) == 1
    };
    assert!(!backend_blocks_sigint);
}

#[pg_test]
fn finish_requires_identity_is_superuser_only_and_off_by_default() {
    assert_eq!(one("SHOW mcp_oauth.finish_requires_identity").as_deref(), Some("off"));
    assert_eq!(
        one("SELECT context FROM pg_settings WHERE name = 'mcp_oauth.finish_requires_identity'").as_deref(),
        Some("superuser")
    );
}
