#!/usr/bin/env bash
# Sign-in and tool calls through SQL against the loopback fixture server:
# the happy path and the hostile cases (forged, replayed, foreign and
# superseded state; issuer, resource and PKCE problems; AS errors).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../lib.sh"

fixture_cluster

psql_q -c "CREATE EXTENSION mcp_oauth" >/dev/null
app_roles alice bob
id=$(as_alice -c "INSERT INTO user_mcp_servers (name, url, auth_type) VALUES ('Fixture', '$base/mcp', 'oauth') RETURNING id")
headers_id=$(as_alice -c "INSERT INTO user_mcp_servers (name, url) VALUES ('Plain', '$base/mcp') RETURNING id")

# Configuration is checked before anything is fetched.
expect_error "start without a redirect URI" MC008 "redirect_uri" -- -U alice -c "SELECT mcp_oauth_start('$id')"
psql_q -c "ALTER SYSTEM SET mcp_oauth.redirect_uri = 'http://127.0.0.1:1/callback'" -c "SELECT pg_reload_conf()" >/dev/null
expect_error "start without a state secret" MC008 "state_secret" -- -U alice -c "SELECT mcp_oauth_start('$id')"
psql_q -c "ALTER SYSTEM SET mcp_oauth.state_secret = 'short'" -c "SELECT pg_reload_conf()" >/dev/null
expect_error "start with a short state secret" MC008 "5 bytes long; at least 32" -- -U alice -c "SELECT mcp_oauth_start('$id')"
psql_q -c "ALTER SYSTEM SET mcp_oauth.state_secret = 'integration-state-secret-0123456789abcdef'" -c "SELECT pg_reload_conf()" >/dev/null
expect_error "plain http to loopback is off by default" MC006 "blocked by the network policy" -- -U alice -c "SELECT mcp_oauth_start('$id')"
psql_q -c "ALTER SYSTEM SET mcp_oauth.allow_http_loopback = on" -c "SELECT pg_reload_conf()" >/dev/null

# Which rows may be started.
expect_error "unknown server" 42704 "not found" -- -U alice -c "SELECT mcp_oauth_start(gen_random_uuid())"
expect_error "another user's server" 42704 "not found" -- -U bob -c "SELECT mcp_oauth_start('$id')"
expect_error "a headers-mode server" 22023 "does not use OAuth" -- -U alice -c "SELECT mcp_oauth_start('$headers_id')"

# The happy path.
url=$(as_alice -c "SELECT mcp_oauth_start('$id')")
check "authorize URL uses PKCE S256" "code_challenge_method=S256" "$url"
check "authorize URL carries the resource" "resource=http%3A%2F%2F127\.0\.0\.1%3A[0-9]+%2Fmcp" "$url"
check "authorize URL asks for offline_access (the AS lists it)" "scope=offline_access" "$url"
check "one dynamic registration" "^1$" "$(stat registrations)"
location=$(browser_approve "$url")
state=$(sed -n 's/.*[?&]state=\([^&]*\).*/\1/p' <<<"$location")
code=$(sed -n 's/.*[?&]code=\([^&]*\).*/\1/p' <<<"$location")
# Bob cannot complete alice's sign-in, and a tampered state is refused; neither consumes it.
expect_error "another user's state" MC002 "another user" -- -U bob -c "SELECT mcp_oauth_finish('$state', '$code')"
c=${state:20:1}; [ "$c" = A ] && t=B || t=A
tampered="${state:0:20}$t${state:21}"
expect_error "a tampered state" MC002 "signature" -- -U alice -c "SELECT mcp_oauth_finish('$tampered', '$code')"
expect_error "garbage state" MC002 "malformed" -- -U alice -c "SELECT mcp_oauth_finish('not-a-state', '$code')"
check "an unauthenticated callback handler may finish (the state says who)" "^$id$" \
  "$(psql_q -At -c "SET mcp_oauth.identity = 'setting:app.user_id'" -c "SELECT mcp_oauth_finish('$state', '$code')" | tail -1)"
check "the row is signed in, without showing a token" "^t\|f\|$" \
  "$(as_alice -c "SELECT oauth_authorized, reauth_required, last_error FROM mcp_servers WHERE id = '$id'")"
check "the code was exchanged with the same resource" "^$base/mcp$" "$(stat last_resource)"
exchanges=$(stat code_exchanges)
expect_error "a replayed callback" MC002 "already completed" -- -U alice -c "SELECT mcp_oauth_callback('$location')"
check "... redeems nothing" "^0$" "$(delta "$exchanges" "$(stat code_exchanges)")"

# Stricter: with mcp_oauth.finish_requires_identity, a caller without an
# identity may not finish (and consumes nothing); the state's user may.
location=$(browser_approve "$(as_alice -c "SELECT mcp_oauth_start('$id')")")
psql_q -c "ALTER SYSTEM SET mcp_oauth.finish_requires_identity = on" -c "SELECT pg_reload_conf()" >/dev/null
expect_error "finish_requires_identity refuses a caller without an identity" 28000 "finished by its user" \
  -- -c "SET mcp_oauth.identity = 'setting:app.user_id'" -c "SELECT mcp_oauth_callback('$location')"
out=$(as_alice 2>&1 <<SQL
LISTEN mcp_oauth_signed_in;
SELECT mcp_oauth_callback('$location');
SELECT 'next statement';
SQL
)
check "... and the state's own user finishes it" "^$id$" "$out"
check "a completed sign-in sends NOTIFY mcp_oauth_signed_in to listeners" \
  "Asynchronous notification \"mcp_oauth_signed_in\" with payload \"\\{\"server_id\" : \"$id\", \"user_id\" : \"alice\"\\}\"" "$out"
check "... once" "^1$" "$(grep -c 'Asynchronous notification' <<<"$out")"
psql_q -c "ALTER SYSTEM RESET mcp_oauth.finish_requires_identity" -c "SELECT pg_reload_conf()" >/dev/null
expect_error "tokens are not readable by the owner" 42501 "permission denied" -- -U alice -c "SELECT oauth_tokens FROM user_mcp_servers"

# Tokens are stored sealed, bound to their row.
check "tokens are stored encrypted (even a superuser sees only ciphertext)" "^1\|f$" \
  "$(psql_q -At -c "SELECT get_byte(oauth_tokens, 0), position('at-' in encode(oauth_tokens, 'escape')) > 0 FROM user_mcp_servers WHERE id = '$id'")"
other=$(as_alice -c "INSERT INTO user_mcp_servers (name, url, auth_type) VALUES ('Copy', '$base/mcp', 'oauth') RETURNING id")
psql_q -c "UPDATE user_mcp_servers SET oauth_tokens = (SELECT oauth_tokens FROM user_mcp_servers WHERE id = '$id') WHERE id = '$other'" >/dev/null
expect_error "a ciphertext copied to another row does not open" MC001 "cannot be read" -- -U alice -c "SELECT mcp_call_tool('$other', 'echo')"

# Tools.
check "tools are listed" "^9$" "$(as_alice -c "SELECT count(*) FROM mcp_list_tools('$id')")"
check "a tool is called" '"sum": 5' "$(as_alice -c "SELECT mcp_call_tool('$id', 'add', '{\"a\": 2, \"b\": 3}')")"
check "a tool error is a result" '"isError": true' "$(as_alice -c "SELECT mcp_call_tool('$id', 'fail')")"
check "mcp_test_server reports ok" '"ok": true.*"tool_count": 9' "$(as_alice -c "SELECT mcp_test_server('$id')")"

# A repeated start in one backend reuses its recent discovery and the
# registration: no request at all.
out=$(psql_q -U alice -At -c "SELECT mcp_oauth_start('$id') IS NOT NULL" -c "\\! curl -s $base/_fixture/stats | jq .requests" \
  -c "SELECT mcp_oauth_start('$id') IS NOT NULL" -c "\\! curl -s $base/_fixture/stats | jq .requests" 2>&1)
check "a repeated mcp_oauth_start costs no request" "^t$" "$(awk 'NR==2 {a=$0} NR==4 {print (a==$0) ? "t" : "f: " a " then " $0}' <<<"$out")"

# A newer start supersedes the older one.
first=$(browser_approve "$(as_alice -c "SELECT mcp_oauth_start('$id')")")
second=$(browser_approve "$(as_alice -c "SELECT mcp_oauth_start('$id')")")
expect_error "a superseded sign-in" MC002 "superseded" -- -U alice -c "SELECT mcp_oauth_callback('$first')"
check "the newest sign-in completes" "^$id$" "$(as_alice -c "SELECT mcp_oauth_callback('$second')")"
check "the client registration is reused for the same issuer" "^1$" "$(stat registrations)"

# RFC 9207: a wrong or missing iss is refused before anything is consumed.
behave '{"send_iss": true}'
location=$(browser_approve "$(as_alice -c "SELECT mcp_oauth_start('$id')")")
state=$(sed -n 's/.*[?&]state=\([^&]*\).*/\1/p' <<<"$location")
code=$(sed -n 's/.*[?&]code=\([^&]*\).*/\1/p' <<<"$location")
expect_error "iss mismatch" MC003 "another issuer" -- -U alice -c "SELECT mcp_oauth_finish('$state', '$code', 'https://evil.example')"
expect_error "iss missing where the AS promises it" MC003 "another issuer" -- -U alice -c "SELECT mcp_oauth_finish('$state', '$code')"
check "the genuine callback still works" "^$id$" "$(as_alice -c "SELECT mcp_oauth_callback('$location')")"

# An error response from the authorization server, reflected escaped.
behave '{"authorize_error": "access_denied"}'
location=$(browser_approve "$(as_alice -c "SELECT mcp_oauth_start('$id')")")
out=$(psql_q -U alice -c "SELECT mcp_oauth_callback('$location')" 2>&1)
check "an AS error response is MC004 with the code" "access_denied" "$out"
refute "its description is not reflected raw" "<script>" "$out"

# Hostile or broken metadata.
for case in wrong_issuer:issuer no_s256:S256 wrong_resource:"not for this server"; do
  behave "{\"${case%%:*}\": true}"
  expect_error "discovery refuses ${case%%:*}" MC003 "${case#*:}" -- -U alice -c "SELECT mcp_oauth_start('$id')"
done

# invalid_client at the token endpoint drops the registration; the next start registers again.
behave '{"invalid_client": true}'
location=$(browser_approve "$(as_alice -c "SELECT mcp_oauth_start('$id')")")
expect_error "invalid_client" MC004 "invalid_client" -- -U alice -c "SELECT mcp_oauth_callback('$location')"
check "the registration was dropped" "^f$" "$(as_alice -c "SELECT oauth_metadata ? 'client' FROM user_mcp_servers WHERE id = '$id'" 2>&1)"
behave '{}'
as_alice -c "SELECT mcp_oauth_start('$id')" >/dev/null
check "a new registration followed" "^2$" "$(stat registrations)"

# A pre-registered client comes first, and authenticates with its secret.
as_alice -c "SELECT mcp_oauth_set_client('$id', 'fixture-preregistered', 'fixture-preregistered-secret')" >/dev/null
url=$(as_alice -c "SELECT mcp_oauth_start('$id')")
check "the pre-registered client is used" "client_id=fixture-preregistered" "$url"
check "a pre-registered client completes" "^$id$" "$(as_alice -c "SELECT mcp_oauth_callback('$(browser_approve "$url")')")"
check "with client_secret_basic" "^client_secret_basic$" "$(stat last_client_auth)"
expect_error "set_client checks its arguments" 22023 "client_id" -- -U alice -c "SELECT mcp_oauth_set_client('$id', '')"

# Step-up: 403 insufficient_scope marks the row (durably, although the call
# raises) and the next start asks for the union.
behave '{"call_scope": "tools:call"}'
out=$(psql_q -U alice -c "BEGIN" -c "SELECT mcp_call_tool('$id', 'add')" -c "ROLLBACK" 2>&1)
check "403 insufficient_scope is MC001" "sign-in required" "$out"
check "reauth_required and last_error survive the rollback" "^t\|reauth_required: the server requires more scope" \
  "$(as_alice -c "SELECT reauth_required, last_error FROM mcp_servers WHERE id = '$id'")"
check "the next sign-in asks for the union" "scope=[^&]*tools%3Acall" "$(as_alice -c "SELECT mcp_oauth_start('$id')")"

# A hostile search_path cannot run code inside the elevated statements.
psql_q <<'SQL'
CREATE SCHEMA evil AUTHORIZATION alice;
SQL
psql_q -U alice <<'SQL'
CREATE FUNCTION evil.uuid_eq(uuid, uuid) RETURNS boolean LANGUAGE plpgsql AS
  $$ BEGIN RAISE EXCEPTION 'hijacked as %', current_user; END $$;
CREATE OPERATOR evil.= (LEFTARG = uuid, RIGHTARG = uuid, FUNCTION = evil.uuid_eq);
CREATE FUNCTION evil.jsonb_build_object(VARIADIC "any") RETURNS jsonb LANGUAGE plpgsql AS
  $$ BEGIN RAISE EXCEPTION 'hijacked as %', current_user; END $$;
SQL
out=$(psql_q -U alice -At -c "SET search_path = evil, pg_catalog, public" \
  -c "SELECT mcp_oauth_set_client('$id', 'fixture-preregistered', 'fixture-preregistered-secret')" \
  -c "SELECT 'set_client returned'" 2>&1)
refute "a shadowing operator or function is never called" "hijacked" "$out"
check "... and the function ran to its end" "^set_client returned$" "$out"

# Reset forgets everything.
as_alice -c "SELECT mcp_oauth_reset('$id')" >/dev/null
check "reset clears the sign-in" "^f\|f\|$" "$(as_alice -c "SELECT oauth_authorized, reauth_required, last_error FROM mcp_servers WHERE id = '$id'")"

# The callback page for the sign-in popup (README, "Integrating").
page=$(as_alice -c "SELECT mcp_oauth_callback_page('$(browser_approve "$(as_alice -c "SELECT mcp_oauth_start('$id')")")', 'http://localhost:3000')")
check "the callback page completes the sign-in" "^t$" "$(as_alice -c "SELECT oauth_authorized FROM mcp_servers WHERE id = '$id'")"
check "... tells the opener it succeeded" '"success":true' "$page"
check "... for this server" "\"server_id\":\"$id\"" "$page"
check "... posting to exactly the target origin" '"targetOrigin":"http://localhost:3000"' "$page"
check "... under a Content-Security-Policy allowing only its own script" "Content-Security-Policy\" content=\"default-src 'none'; script-src 'sha256-" "$page"
check "... and closes itself" "window.close\(\)" "$page"
refute "... never posting to any origin" "'\*'|\"\*\"" "$page"
page=$(as_alice -c "SELECT mcp_oauth_callback_page('$location', 'https://app.example.com/')")
check "a replayed callback makes a failure page, not an SQL error" '"success":false' "$page"
check "... naming the SQLSTATE" '"error":"invalid OAuth callback: This sign-in was already completed[^"]*\(MC002\)"' "$page"
hostile_callback='http://127.0.0.1:1/callback?error=access_denied&error_description=%3C%2Fscript%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E%3Cimg%20src%3Dx%20onerror%3Dalert(2)%3E'
page=$(as_alice -c "SELECT mcp_oauth_callback_page('$hostile_callback', 'https://app.example.com')")
check "an error description cannot open a script or an element" "^2$" "$(grep -o '<script' <<<"$page" | wc -l)"
refute "... nor an image" "<img" "$page"
check "... and is shown escaped" 'access_denied: \\u\{3c\}/script' "$page"
for origin in '*' 'https://app.example.com/callback' 'javascript:alert(1)' 'null'; do
  expect_error "target_origin $origin is refused" 22023 "target_origin must be an origin" -- -U alice -c "SELECT mcp_oauth_callback_page('$hostile_callback', '$origin')"
done

# Disconnect revokes the tokens where they were issued (RFC 7009), then forgets them.
sign_in "$id"
requests=$(stat revocation_requests)
check "disconnect revokes" '"revocation": "revoked"' "$(as_alice -c "SELECT mcp_oauth_disconnect('$id')")"
check "... the refresh token (the grant, access token included), then the access token" "^2 refresh_token$" \
  "$(delta "$requests" "$(stat revocation_requests)") $(stat 'revoked | last')"
check "... and forgets them" "^f$" "$(as_alice -c "SELECT oauth_authorized FROM mcp_servers WHERE id = '$id'")"
check "nothing left to revoke" '"revocation": "no_tokens"' "$(as_alice -c "SELECT mcp_oauth_disconnect('$id')")"
sign_in "$id"
behave '{"revocation_unavailable": true}'
out=$(as_alice -c "SELECT mcp_oauth_disconnect('$id')" 2>&1)
check "a failed revocation is reported" '"revocation": "failed"' "$out"
check "... with a warning" "WARNING:  mcp_oauth: the tokens of server $id could not be revoked" "$out"
check "... and never keeps the tokens" "^f$" "$(as_alice -c "SELECT oauth_authorized FROM mcp_servers WHERE id = '$id'")"
behave '{}'
expect_error "bob cannot disconnect alice's server" 42704 "not found" -- -U bob -c "SELECT mcp_oauth_disconnect('$id')"

finish_checks oauth
