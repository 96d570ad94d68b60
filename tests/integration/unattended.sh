#!/usr/bin/env bash
# Servers whose token is obtained with no user present (README, "Connectors
# without a user"): auth_type 'client_credentials' with a client secret or a
# private key (private_key_jwt), and 'workload_identity' with the token file
# a superuser names. Against the fixture, which verifies every assertion
# with the public key and counts what it received.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../lib.sh"

fixture_cluster
signin_ready
app_roles bob
keys="$dir/keys"
mkdir -p "$keys"
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
# signed_jwt KEY CLAIMS: a JWT of CLAIMS signed RS256 with the PEM key KEY.
signed_jwt() {
  local head body
  head=$(printf '{"alg":"RS256","typ":"JWT"}' | b64url)
  body=$(printf '%s' "$2" | b64url)
  printf '%s.%s.%s' "$head" "$body" "$(printf '%s.%s' "$head" "$body" | openssl dgst -sha256 -sign "$1" | b64url)"
}

# --- Client credentials with a client secret (client_secret_basic).
cc=$(as_alice -c "INSERT INTO user_mcp_servers (name, slug, url, auth_type) VALUES ('Service', 'service', '$base/mcp', 'client_credentials') RETURNING id")
check "a client_credentials row needs no sign-in: not reauth_required" "^f$" "$(as_alice -c "SELECT reauth_required FROM mcp_servers WHERE id = '$cc'")"
expect_error "a call before the client is set" 55000 "has no client credentials" -- -U alice -c "SELECT mcp_call_tool('$cc', 'echo', '{}')"
check "... sends nothing to the token endpoint" "^0$" "$(stat unattended_requests)"
expect_error "mcp_oauth_start on such a row" 22023 "without a sign-in" -- -U alice -c "SELECT mcp_oauth_start('$cc')"
as_alice -c "SELECT mcp_oauth_set_client('$cc', 'fixture-preregistered', 'fixture-preregistered-secret')" >/dev/null
behave '{"scopes_supported": ["tools:read", "tools:call"]}'
out=$(as_alice -c "SELECT mcp_call_tool('$cc', 'echo', '{\"text\": \"from a job\"}')->'content'->0->>'text'")
check "a call obtains the client's token and is answered" "^from a job$" "$out"
check "... by one client credentials grant" "^1$" "$(stat client_credentials_grants)"
check "... authenticated with client_secret_basic" "^client_secret_basic$" "$(stat last_client_auth)"
check "... for the server's resource (RFC 8707)" "^$base/mcp$" "$(stat last_resource)"
check "... asking for the resource's scopes, without offline_access" "^tools:read tools:call$" "$(stat last_scope)"
behave '{}'
as_alice -c "SELECT mcp_call_tool('$cc', 'echo', '{}')" >/dev/null
check "the next call reuses the token" "^1$" "$(stat client_credentials_grants)"

# A backend that obtained a token reuses its discovery for the next one:
# the 401, the token request and the call again, no metadata requests.
revoke_all="curl -s -o /dev/null -X POST -H 'content-type: application/json' -d '{\"revoke_access\": true}' $base/_fixture/config"
out=$(as_alice <<SQL
\! $revoke_all
SELECT mcp_call_tool('$cc', 'echo', '{}') IS NOT NULL;
\! $revoke_all
\! curl -s $base/_fixture/stats | jq -r .requests > $dir/requests.before
SELECT mcp_call_tool('$cc', 'echo', '{}') IS NOT NULL;
\! curl -s $base/_fixture/stats | jq -r .requests > $dir/requests.after
SQL
)
check "a new token twice in the same backend: both calls answered" "^t.t.$" "$(tr '\n' . <<<"$out")"
check "... the second with three requests (401, token, call), no discovery" "^3$" "$(delta "$(cat "$dir/requests.before")" "$(cat "$dir/requests.after")")"

# Refused by the server (the tokens revoked): one new grant for all backends.
behave '{"revoke_access": true}'
behave '{}'
grants=$(stat client_credentials_grants)
for i in 1 2 3 4; do as_alice -c "SELECT mcp_call_tool('$cc', 'echo', '{\"text\": \"c$i\"}')->'content'->0->>'text'" >"$dir/cc$i" 2>&1 & done
wait
check "four backends meeting a revoked token all succeed" "^c1c2c3c4$" "$(cat "$dir"/cc1 "$dir"/cc2 "$dir"/cc3 "$dir"/cc4 | tr -d '\n')"
check "... after one new grant between them" "^1$" "$(delta "$grants" "$(stat client_credentials_grants)")"

# The caller's rollback keeps the new token (the durable writer stored it).
behave '{"revoke_access": true}'
behave '{}'
grants=$(stat client_credentials_grants)
as_alice -c "BEGIN" -c "SELECT mcp_call_tool('$cc', 'echo', '{}')" -c "ROLLBACK" >/dev/null
as_alice -c "SELECT mcp_call_tool('$cc', 'echo', '{}')" >/dev/null
check "a token obtained in a rolled-back transaction is kept" "^1$" "$(delta "$grants" "$(stat client_credentials_grants)")"

# From a trigger, through the queue, as the row's owner.
psql_q >/dev/null <<SQL
CREATE TABLE orders (id serial PRIMARY KEY, note text, owner text NOT NULL DEFAULT current_user);
GRANT INSERT, SELECT ON orders TO alice;
GRANT USAGE ON SEQUENCE orders_id_seq TO alice;
CREATE FUNCTION orders_notify() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
    PERFORM mcp_call_tool_async('$cc', 'echo', jsonb_build_object('text', 'order ' || NEW.note));
    RETURN NEW;
END \$\$;
CREATE TRIGGER orders_notify AFTER INSERT ON orders FOR EACH ROW EXECUTE FUNCTION orders_notify();
SQL
as_alice -c "INSERT INTO orders (note) VALUES ('42')" >/dev/null
call=$(as_alice -c "SELECT id FROM mcp_calls WHERE server_id = '$cc' ORDER BY id DESC LIMIT 1")
check "a trigger's queued call on the row succeeds" "^order 42$" "$(as_alice -c "SELECT mcp_call_result($call, '20 s')->'content'->0->>'text'")"

# A queued call that needs a new token obtains it in the queue worker.
behave '{"revoke_access": true}'
behave '{}'
grants=$(stat client_credentials_grants)
call=$(as_alice -c "SELECT mcp_call_tool_async('$cc', 'echo', '{\"text\": \"queued\"}')")
check "a queued call whose token was revoked obtains a new one" "^queued$" "$(as_alice -c "SELECT mcp_call_result($call, '20 s')->'content'->0->>'text'")"
check "... with one grant" "^1$" "$(delta "$grants" "$(stat client_credentials_grants)")"

# The MCP server refuses even a fresh token: one new grant, then an error
# that says so (not "sign in").
behave '{"reject_tokens": true}'
grants=$(stat client_credentials_grants)
expect_error "a server refusing the token obtained" MC001 "refused the token just obtained with the credentials of this row" -- \
  -U alice -c "SELECT mcp_call_tool('$cc', 'echo', '{}')"
check "... after one new grant, not more" "^1$" "$(delta "$grants" "$(stat client_credentials_grants)")"
behave '{}'

# Another user sees nothing and can set nothing.
expect_error "bob calls alice's row" 42704 "not found" -- -U bob -c "SELECT mcp_call_tool('$cc', 'echo', '{}')"
expect_error "bob sets alice's client" 42704 "not found" -- -U bob -c "SELECT mcp_oauth_set_client('$cc', 'mine', 'my-secret-0001')"

# Refused credentials: MC001, recorded, and not tried again until new ones.
as_alice -c "SELECT mcp_oauth_set_client('$cc', 'fixture-preregistered', 'a-wrong-secret-0001')" >/dev/null
expect_error "a wrong client secret" MC001 "refused the client credentials \(invalid_client" -- -U alice -c "SELECT mcp_call_tool('$cc', 'echo', '{}')"
refute "... the error never carries the secret" "a-wrong-secret" "$(psql_q -U alice -c "SELECT mcp_call_tool('$cc', 'echo', '{}')" 2>&1; cat "$dir/server.log")"
check "... the row is marked, with why" "^t\|reauth_required: the authorization server refused the client credentials" \
  "$(as_alice -c "SELECT reauth_required, last_error FROM mcp_servers WHERE id = '$cc'")"
requests=$(stat unattended_requests)
expect_error "the next call" MC001 "refused" -- -U alice -c "SELECT mcp_call_tool('$cc', 'echo', '{}')"
check "... sends no token request" "^0$" "$(delta "$requests" "$(stat unattended_requests)")"
as_alice -c "SELECT mcp_oauth_set_client('$cc', 'fixture-preregistered', 'fixture-preregistered-secret')" >/dev/null
check "new credentials clear the mark" "^f$" "$(as_alice -c "SELECT reauth_required FROM mcp_servers WHERE id = '$cc'")"
check "... and the next call works" "^ok$" "$(as_alice -c "SELECT mcp_call_tool('$cc', 'echo', '{\"text\": \"ok\"}')->'content'->0->>'text'")"

# --- private_key_jwt: the key is checked, sealed, and signs each assertion.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$keys/client.pem" 2>/dev/null
openssl pkey -in "$keys/client.pem" -pubout -out "$keys/client.pub" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$keys/other.pem" 2>/dev/null
behave "$(jq -n --rawfile k "$keys/client.pub" '{client_public_key: $k}')"
kj=$(as_alice -c "INSERT INTO user_mcp_servers (name, slug, url, auth_type) VALUES ('Keyed', 'keyed', '$base/mcp', 'client_credentials') RETURNING id")
pem=$(cat "$keys/client.pem")
expect_error "a key that is no key" 22023 "private_key is not usable: the key is not a P-256 EC private key" -- \
  -U alice -c "SELECT mcp_oauth_set_client_key('$kj', 'svc-1', 'garbage')"
expect_error "an EC key for RS256" 22023 "not an RSA private key" -- \
  -U alice -c "SELECT mcp_oauth_set_client_key('$kj', 'svc-1', \$k\$$pem\$k\$, 'RS256')"
expect_error "a shared-secret algorithm" 22023 "algorithm must be one of ES256" -- \
  -U alice -c "SELECT mcp_oauth_set_client_key('$kj', 'svc-1', \$k\$$pem\$k\$, 'HS256')"
as_alice -c "SELECT mcp_oauth_set_client_key('$kj', 'svc-1', \$k\$$pem\$k\$, 'ES256', 'kid-1')" >/dev/null
grants=$(stat client_credentials_grants)
check "a private_key_jwt client's call is answered" "^signed$" "$(as_alice -c "SELECT mcp_call_tool('$kj', 'echo', '{\"text\": \"signed\"}')->'content'->0->>'text'")"
check "... its assertion verified by the server" "^1$" "$(delta "$grants" "$(stat client_credentials_grants)")"
check "... sent as private_key_jwt with the key id" "^private_key_jwt kid-1$" "$(stat last_client_auth) $(stat last_assertion_kid)"
check "the key is sealed at rest" "^enc1:" "$(psql_q -At -c "SELECT oauth_client_secret FROM user_mcp_servers WHERE id = '$kj'")"
expect_error "the key is not readable by the application" 42501 "permission denied" -- -U alice -c "SELECT oauth_client_secret FROM user_mcp_servers"
pem=$(cat "$keys/other.pem")
as_alice -c "SELECT mcp_oauth_set_client_key('$kj', 'svc-1', \$k\$$pem\$k\$)" >/dev/null
expect_error "a key the server does not know" MC001 "invalid_client" -- -U alice -c "SELECT mcp_call_tool('$kj', 'echo', '{}')"

# --- Workload identity: the token file a superuser names.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$keys/issuer.pem" 2>/dev/null
openssl pkey -in "$keys/issuer.pem" -pubout -out "$keys/issuer.pub" 2>/dev/null
# workload_jwt EXP: a workload token of the platform's issuer, for the fixture.
workload_jwt() {
  signed_jwt "$keys/issuer.pem" "$(printf '{"iss":"https://platform.example","sub":"system:serviceaccount:db:pg","aud":"%s","iat":%s,"exp":%s}' "$base" "$(date +%s)" "$1")"
}
behave "$(jq -n --rawfile k "$keys/issuer.pub" '{assertion_public_key: $k}')"
wi=$(as_alice -c "INSERT INTO user_mcp_servers (name, slug, url, auth_type) VALUES ('Workload', 'workload', '$base/mcp', 'workload_identity') RETURNING id")
expect_error "no token file named" MC008 "mcp_oauth.workload_token_file is not set" -- -U alice -c "SELECT mcp_call_tool('$wi', 'echo', '{}')"
expect_error "an application cannot name one" 42501 "permission denied to set parameter" -- -U alice -c "SET mcp_oauth.workload_token_file = '/etc/passwd'"
token_file="$dir/token"
workload_jwt $(($(date +%s) + 3600)) >"$token_file"
chown postgres: "$token_file" 2>/dev/null; chmod 600 "$token_file"
psql_q -c "ALTER SYSTEM SET mcp_oauth.workload_token_file = '$token_file'" -c "SELECT pg_reload_conf()" >/dev/null
check "a workload identity call is answered" "^federated$" "$(as_alice -c "SELECT mcp_call_tool('$wi', 'echo', '{\"text\": \"federated\"}')->'content'->0->>'text'")"
check "... after one JWT bearer grant with the workload's token" "^1 system:serviceaccount:db:pg$" "$(stat jwt_bearer_grants) $(stat last_assertion_subject)"
check "... and no secret stored for it" "^t$" "$(psql_q -At -c "SELECT oauth_client_secret IS NULL FROM user_mcp_servers WHERE id = '$wi'")"
# An expired token: refused, recorded, not sent again until the file changes.
workload_jwt $(($(date +%s) - 600)) >"$token_file"
behave "$(jq -n --rawfile k "$keys/issuer.pub" '{assertion_public_key: $k, revoke_access: true}')"
expect_error "an expired workload token" MC001 "refused the workload identity token \(invalid_grant" -- -U alice -c "SELECT mcp_call_tool('$wi', 'echo', '{}')"
requests=$(stat unattended_requests)
expect_error "the same token again" MC001 "refused" -- -U alice -c "SELECT mcp_call_tool('$wi', 'echo', '{}')"
check "... is not sent again" "^0$" "$(delta "$requests" "$(stat unattended_requests)")"
workload_jwt $(($(date +%s) + 3600)) >"$token_file"
check "the platform rotates the file: the next call uses the new token" "^rotated$" \
  "$(as_alice -c "SELECT mcp_call_tool('$wi', 'echo', '{\"text\": \"rotated\"}')->'content'->0->>'text'")"
check "... and the row is no longer marked" "^f$" "$(as_alice -c "SELECT reauth_required FROM mcp_servers WHERE id = '$wi'")"
refute "no workload token in the server log" "$(cut -d. -f2 "$token_file")" "$(cat "$dir/server.log")"
psql_q -c "ALTER SYSTEM SET mcp_oauth.workload_token_file = '$dir/missing'" -c "SELECT pg_reload_conf()" >/dev/null
behave '{"revoke_access": true}'
expect_error "a token file that cannot be read" MC008 "$dir/missing named by mcp_oauth.workload_token_file cannot be read" -- -U alice -c "SELECT mcp_call_tool('$wi', 'echo', '{}')"

# --- Enterprise-managed authorization: a sign-in with the user's ID token.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$keys/idp.pem" 2>/dev/null
openssl pkey -in "$keys/idp.pem" -pubout -out "$keys/idp.pub" 2>/dev/null
# id_token KEY: alice's ID token from the identity provider, for the app's client there.
id_token() {
  signed_jwt "$1" "$(printf '{"iss":"%s/idp","sub":"alice@corp.example","aud":"app-at-idp","iat":%s,"exp":%s}' "$base" "$(date +%s)" "$(($(date +%s) + 600))")"
}
behave "$(jq -n --rawfile k "$keys/idp.pub" '{id_token_public_key: $k}')"
en=$(as_alice -c "INSERT INTO user_mcp_servers (name, slug, url, auth_type) VALUES ('Corp', 'corp', '$base/mcp', 'oauth') RETURNING id")
token=$(id_token "$keys/idp.pem")
expect_error "no identity provider named" MC008 "mcp_oauth.idp_token_endpoint is not set" -- -U alice -c "SELECT mcp_oauth_enterprise_sign_in('$en', '$token')"
psql_q -c "ALTER SYSTEM SET mcp_oauth.idp_token_endpoint = '$base/idp/token'" -c "ALTER SYSTEM SET mcp_oauth.idp_client_id = 'app-at-idp'" -c "SELECT pg_reload_conf()" >/dev/null
expect_error "no client for the authorization server" 22023 "has no client" -- -U alice -c "SELECT mcp_oauth_enterprise_sign_in('$en', '$token')"
as_alice -c "SELECT mcp_oauth_set_client('$en', 'fixture-preregistered', 'fixture-preregistered-secret')" >/dev/null
out=$(psql_q -U alice -c "SELECT mcp_oauth_enterprise_sign_in('$en', 'not-a.jwt')" 2>&1)
check "an ID token that is no JWT: 22023" "22023|id_token is not usable: it is not a JWT" "$out"
refute "... never repeated" "not-a.jwt" "$out"
expect_error "bob signs in to alice's row" 42704 "not found" -- -U bob -c "SELECT mcp_oauth_enterprise_sign_in('$en', '$token')"
exchanges=$(stat token_exchanges)
as_alice -c "BEGIN" -c "SELECT mcp_oauth_enterprise_sign_in('$en', '$token')" -c "ROLLBACK" >/dev/null
check "a sign-in with the ID token, even rolled back, stands" "^t$" "$(as_alice -c "SELECT oauth_authorized FROM mcp_servers WHERE id = '$en'")"
check "... through one token exchange at the identity provider" "^1$" "$(delta "$exchanges" "$(stat token_exchanges)")"
check "... for the authorization server and the resource" "^$base $base/mcp$" "$(stat last_exchange_audience) $(stat last_exchange_resource)"
check "... whose grant the client redeemed" "^1$" "$(stat id_jag_grants)"
check "the user's tools are then called" "^enterprise$" "$(as_alice -c "SELECT mcp_call_tool('$en', 'echo', '{\"text\": \"enterprise\"}')->'content'->0->>'text'")"
# (PostgreSQL itself logs a failed statement's text: applications pass the
# token as a bind parameter, which it does not log.)
refute "the ID token is in no log line of the extension's" "$(cut -d. -f2 <<<"$token")" "$(grep -v 'STATEMENT:' "$dir/server.log")"
other_token=$(id_token "$keys/issuer.pem")
out=$(psql_q -U alice -c "SELECT mcp_oauth_enterprise_sign_in('$en', '$other_token')" 2>&1)
check "an ID token the identity provider refuses: MC004 with its code" "MC004|invalid_grant" "$out"
refute "... never repeated" "$(cut -d. -f3 <<<"$other_token")" "$out"
check "... recorded on the row" "invalid_grant" "$(as_alice -c "SELECT last_error FROM mcp_servers WHERE id = '$en'")"

finish_checks unattended
