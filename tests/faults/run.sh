#!/usr/bin/env bash
# The token lifecycle under races, isolation levels, faults and migrations
# (SECURITY.md, "Concurrency and faults"): one refresh for a herd in every
# isolation level, refresh only where the tokens came from, late writes that
# never undo newer changes, no silent loss without a worker slot, no hidden
# deadlock with ALTER TABLE, cancels that keep a rotation, key rotation
# beside refreshes, token syntax, no secret echoed back, signal masks,
# idle keep-alive connections and a refresh margin that fits the token.
# Loopback fixtures only; every loop is bounded.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../lib.sh"

throwaway_cluster
cluster_conf <<CONF
max_connections = 120
log_min_messages = debug1
CONF
a=$(start_fixture "$dir" a)       # MCP server + its authorization server
b=$(start_fixture "$dir" b)       # a second authorization server
c=$(start_fixture "$dir" c)       # another MCP server
k=$(start_fixture "$dir" k 1000)  # closes keep-alive connections idle for 1 s

signin_ready
new_row() { as_alice -c "INSERT INTO user_mcp_servers (name, url, auth_type) VALUES ('${2:-f}', '$1/mcp', 'oauth') RETURNING id"; }
call() { as_alice -c "SELECT mcp_call_tool('$1', 'echo', '{\"text\": \"${2:-hi}\"}')" 2>&1; }
# expired ID: sign in with a 2-second token and let it expire.
expired() { fixture_config "$a" '{"expires_in": 2}'; sign_in "$1"; sleep 2.2; fixture_config "$a" '{}'; }
millis() { date +%s%3N; }
# wants N: section N runs (FAULTS_ONLY="1 3" runs only those; default all).
wants() { [ -z "${FAULTS_ONLY:-}" ] || [[ " $FAULTS_ONLY " == *" $1 "* ]]; }

if wants 1; then
say "1. one refresh for 32 concurrent callers, in every isolation level"
herd=$(new_row "$a" herd)
for level in 'read committed' 'repeatable read' 'serializable'; do
  expired "$herd"
  # The authorization server answers the refresh after 1.5 s: the callers
  # pile up behind the one that sends it.
  fixture_config "$a" '{"token_reply_delay_ms": 1500}'
  refreshes=$(fixture_stat "$a" refreshes) reuse=$(fixture_stat "$a" refresh_reuse)
  pids=()
  for i in $(seq 32); do
    PGOPTIONS="-c default_transaction_isolation=${level// /\\ }" call "$herd" "h$i" >"$dir/herd.$i" &
    pids+=($!)
  done
  most=0
  for _ in $(seq 30); do
    waiting=$(psql_q -At -c "SELECT count(*) FROM pg_stat_activity WHERE usename = 'alice' AND wait_event_type = 'Lock'")
    [ "$waiting" -gt "$most" ] && most=$waiting
    sleep 0.05
  done
  for p in "${pids[@]}"; do wait "$p"; done
  fixture_config "$a" '{}'
  check "$level: the callers overlapped (at least 16 waited for the refresh in flight)" "^(1[6-9]|2[0-9]|3[01])$" "$most"
  check "$level: exactly one refresh request" "^1$" "$(delta "$refreshes" "$(fixture_stat "$a" refreshes)")"
  check "$level: no refresh token presented twice" "^0$" "$(delta "$reuse" "$(fixture_stat "$a" refresh_reuse)")"
  check "$level: 32 of 32 calls succeed" "^32$" "$(cat "$dir"/herd.* | grep -c '"text": "h[0-9]*"')"
  check "$level: the callers ran at that isolation level" "^$level$" \
    "$(PGOPTIONS="-c default_transaction_isolation=${level// /\\ }" as_alice -c "SHOW transaction_isolation")"
  rm -f "$dir"/herd.*
done

fi

if wants 2; then
say "2. a refresh goes only where the tokens came from"
moved=$(new_row "$a" moved)
sign_in "$moved"
fixture_config "$a" "{\"resource_metadata_override\": {\"authorization_servers\": [\"$b\"]}}"
check "a new sign-in discovers the second authorization server" "^1$" \
  "$(as_alice -c "SELECT mcp_oauth_start('$moved')" >/dev/null; fixture_stat "$b" registrations)"
fixture_config "$a" "{\"resource_metadata_override\": {\"authorization_servers\": [\"$b\"]}, \"reject_tokens\": true}"
refreshes=$(fixture_stat "$a" refreshes)
out=$(call "$moved")
check "the abandoned sign-in leaves the call to fail with MC001" "sign-in required" "$out"
check "... after a refresh, sent to the first authorization server" "^1$" "$(delta "$refreshes" "$(fixture_stat "$a" refreshes)")"
check "the second authorization server's token endpoint receives nothing" "^0$" "$(fixture_stat "$b" token_requests)"
fixture_config "$a" '{}'
# Stored credentials whose grant names another issuer than their tokens (a
# row edited or restored by hand; the column also takes unsealed JSON): the
# refresh token is never sent to the grant's authorization server.
forged=$(new_row "$a" forged)
sign_in "$forged"
psql_q -c "UPDATE user_mcp_servers SET oauth_tokens = convert_to(json_build_object(
             'access_token', 'at-forged', 'refresh_token', 'rt-forged', 'expires_at', 1, 'issuer', '$a',
             'grant', json_build_object('issuer', '$b', 'token_endpoint', '$b/token', 'client_id', 'c',
                                        'auth_method', 'none', 'resource', '$a/mcp'))::text, 'UTF8')
           WHERE id = '$forged'" >/dev/null
# Tokens as 0.1.0 sealed them (no grant), whose client is then set by
# hand: the new client names no authorization server, and the tokens came
# with another one. They are not refreshed with it (its secret would go to
# the tokens' server as a guess): a new sign-in.
reclient=$(new_row "$a" reclient)
sign_in "$reclient"
# (0.1.0 kept its discovery at the top level of oauth_metadata.)
psql_q -c "UPDATE user_mcp_servers SET oauth_tokens = convert_to(json_build_object(
             'access_token', 'at-legacy-0001', 'refresh_token', 'rt-legacy-0001', 'expires_at', 1, 'issuer', '$a')::text, 'UTF8'),
             oauth_metadata = oauth_metadata || jsonb_build_object('authorization_server', jsonb_build_object(
               'issuer', '$a', 'authorization_endpoint', '$a/authorize', 'token_endpoint', '$a/token'))
           WHERE id = '$reclient'" >/dev/null
as_alice -c "SELECT mcp_oauth_set_client('$reclient', 'hand-set-client', 'hand-set-secret')" >/dev/null
requests=$(fixture_stat "$a" token_requests)
expect_error "tokens of 0.1.0 and a client set by hand afterwards: a new sign-in" MC001 "no longer known" \
  -- -U alice -c "SELECT mcp_call_tool('$reclient', 'echo', '{\"text\": \"x\"}')"
check "... nothing was sent to the token endpoint" "^0$" "$(delta "$requests" "$(fixture_stat "$a" token_requests)")"
requests=$(fixture_stat "$b" token_requests)
out=$(call "$forged")
check "a grant naming another issuer than its tokens: MC001, no refresh" "sign-in required" "$out"
check "... the grant's authorization server receives nothing" "^0$" "$(delta "$requests" "$(fixture_stat "$b" token_requests)")"

fi

if wants 3; then
say "3. a late write never undoes a newer change"
late=$(new_row "$a" late)
fixture_config "$a" '{"token_delay_ms": 2000}'
location=$(browser_approve "$(as_alice -c "SELECT mcp_oauth_start('$late')")")
as_alice -c "SELECT mcp_oauth_callback('$location')" >"$dir/late.out" 2>&1 &
finisher=$!
sleep 0.5
started=$(millis)
as_alice -c "UPDATE user_mcp_servers SET url = '$c/mcp' WHERE id = '$late'" >/dev/null
waited=$(( $(millis) - started ))
wait "$finisher"
fixture_config "$a" '{}'
check "a code exchange in flight during a URL change completes" "^$late$" "$(cat "$dir/late.out")"
check "... the URL change waits for it (the row is held through the exchange)" "^1$" "$(( waited >= 1000 ))"
check "... and leaves the row signed out" "^f\|t$" \
  "$(as_alice -c "SELECT oauth_authorized, reauth_required FROM mcp_servers WHERE id = '$late'")"
out=$(call "$late")
check "... the next call asks for a sign-in" "sign-in required" "$out"
check "... and the new URL never receives a credential" "^0$" "$(fixture_stat "$c" credentialed_requests)"
# The URL changes in a transaction that holds the row from before the
# callback reads it until after: the callback finds its flow and asks for
# the row, which it gets only once the change has committed. The write's
# condition (this flow still in progress) must refuse it then.
stale=$(new_row "$a" stale)
location=$(browser_approve "$(as_alice -c "SELECT mcp_oauth_start('$stale')")")
psql_q -U alice -c "BEGIN" -c "UPDATE user_mcp_servers SET url = '$c/mcp' WHERE id = '$stale'" -c "SELECT pg_sleep(1.5)" -c "COMMIT" >/dev/null &
changer=$!
sleep 0.3
exchanges=$(fixture_stat "$a" code_exchanges)
out=$(psql_q -U alice -v VERBOSITY=verbose -c "SELECT mcp_oauth_callback('$location')" 2>&1)
wait "$changer"
check "a callback that got the row only after a URL change committed is refused" "ERROR:  MC002:" "$out"
check "... as a sign-in that is over" "already completed" "$out"
check "... without redeeming the code" "^0$" "$(delta "$exchanges" "$(fixture_stat "$a" code_exchanges)")"
check "... and the row stays signed out" "^f$" "$(as_alice -c "SELECT oauth_authorized FROM mcp_servers WHERE id = '$stale'")"

stepup=$(new_row "$a" stepup)
sign_in "$stepup"
fixture_config "$a" '{"call_scope": "tools:call", "mcp_delay_ms": 2000}'
call "$stepup" >"$dir/stepup.out" 2>&1 &
caller=$!
sleep 0.5
location=$(browser_approve "$(as_alice -c "SELECT mcp_oauth_start('$stepup')")")
wait "$caller"
fixture_config "$a" '{}'
check "a slow call fails with insufficient_scope meanwhile" "sign-in required" "$(cat "$dir/stepup.out")"
check "... its scope and the new sign-in are both on the row (metadata written by key)" "^[^|]*tools:call[^|]*\|t$" \
  "$(psql_q -At -c "SELECT oauth_metadata ->> 'step_up_scope', oauth_metadata ? 'flow' FROM user_mcp_servers WHERE id = '$stepup'")"
check "the sign-in started during that call can still be finished" "^$stepup$" \
  "$(as_alice -c "SELECT mcp_oauth_callback('$location')" 2>&1)"

fi

if wants 4; then
say "4. no background worker: the refresh is not sent, nothing is lost; a busy one is waited for; the ones registered at start serve"
spare=$(new_row "$a" spare)
fixture_config "$a" '{"expires_in": 2}'
sign_in "$spare"
fixture_config "$a" '{}'
# No durable writer registered at start, and the logical replication
# launcher takes the only slot there is. (No queue worker in this section:
# each takes a slot, and the section counts them.)
psql_q -c "ALTER SYSTEM SET mcp_oauth.call_workers = 0" >/dev/null
psql_q -c "ALTER SYSTEM SET mcp_oauth.durable_workers = 0" -c "ALTER SYSTEM SET max_worker_processes = 1" >/dev/null
restart_cluster
sleep 2.2
refreshes=$(fixture_stat "$a" refreshes)
out=$(psql_q -U alice -v VERBOSITY=verbose -c "BEGIN" -c "SELECT mcp_call_tool('$spare', 'echo', '{\"text\": \"x\"}')" -c "ROLLBACK" 2>&1)
check "the call fails loudly" "ERROR:  53000: .*background worker" "$out"
check "... before the refresh was sent" "^0$" "$(delta "$refreshes" "$(fixture_stat "$a" refreshes)")"
started=$(millis)
out=$(psql_q -U alice -v VERBOSITY=verbose -c "SET statement_timeout = '1s'" -c "SELECT mcp_call_tool('$spare', 'echo', '{\"text\": \"x\"}')" 2>&1)
check "a statement timeout ends the wait for a slot, worded as PostgreSQL words it" "ERROR:  57014: canceling statement due to statement timeout" "$out"
check "... at once (within 3 s, not after the 5 s wait)" "^1$" "$(( $(millis) - started < 3000 ))"
# What needs no token request still works without a worker, in the
# caller's transaction, with a WARNING that says so: a sign-in...
unworked=$(new_row "$a" unworked)
location=$(browser_approve "$(as_alice -c "SELECT mcp_oauth_start('$unworked')")")
out=$(psql_q -U alice -At -c "SELECT mcp_oauth_callback('$location')" 2>&1)
check "without any worker a sign-in still completes" "^$unworked$" "$out"
check "... in the caller's transaction, saying so" "WARNING:  mcp_oauth: the sign-in to server $unworked is stored in the current transaction only" "$out"
check "... stored" "^t$" "$(as_alice -c "SELECT oauth_authorized FROM mcp_servers WHERE id = '$unworked'")"
# ...and failure state that no ERROR rolls back (mcp_test_server reports it).
refused=$(as_alice -c "INSERT INTO user_mcp_servers (name, url, headers) VALUES ('refused', '$a/mcp', '{\"X-Api-Key\": \"wrong-key\"}') RETURNING id")
fixture_config "$a" '{"api_key": "key-right"}'
out=$(psql_q -U alice -At -c "SELECT mcp_test_server('$refused')" 2>&1)
fixture_config "$a" '{}'
check "without any worker a failure is still recorded" "refused the configured headers" \
  "$(as_alice -c "SELECT last_error FROM mcp_servers WHERE id = '$refused'")"
check "... in the caller's transaction, saying so" "WARNING:  mcp_oauth: the failure state of server $refused was recorded in the current transaction only" "$out"
psql_q -c "ALTER SYSTEM RESET max_worker_processes" >/dev/null
restart_cluster
reuse=$(fixture_stat "$a" refresh_reuse)
check "with a slot free again the call refreshes and succeeds" '"text": "again"' "$(call "$spare" again)"
check "... without reusing a refresh token" "^0$" "$(delta "$reuse" "$(fixture_stat "$a" refresh_reuse)")"

# A durable writer registered at start and the launcher take both slots:
# no dynamic worker can start, yet a refresh in a transaction that rolls
# back keeps its pair, stored by the writer.
psql_q -c "ALTER SYSTEM SET mcp_oauth.durable_workers = 1" -c "ALTER SYSTEM SET max_worker_processes = 2" >/dev/null
restart_cluster
check "no dynamic worker can start (a parallel query gets none)" "Workers Planned: 1.*Workers Launched: 0" \
  "$(psql_q -c "SET force_parallel_mode = on" -c "EXPLAIN (ANALYZE, COSTS OFF) SELECT 1" 2>&1 | tr -d '\n')"
fixture_config "$a" '{"expires_in": 2}'
sign_in "$spare"
fixture_config "$a" '{}'
sleep 2.2
refreshes=$(fixture_stat "$a" refreshes) reuse=$(fixture_stat "$a" refresh_reuse)
out=$(psql_q -U alice -v VERBOSITY=verbose -c "BEGIN" -c "SELECT mcp_call_tool('$spare', 'echo', '{\"text\": \"rolled back\"}')" -c "ROLLBACK" 2>&1)
check "a refresh in a transaction that rolls back succeeds without a dynamic worker" '"text": "rolled back"' "$out"
refute "... without falling back to the caller's transaction" "WARNING|53000" "$out"
check "the rotated pair outlived the rollback: the next call refreshes no more" '"text": "kept"' "$(call "$spare" kept)"
check "... one refresh in all, no refresh token reused" "^1 0$" \
  "$(delta "$refreshes" "$(fixture_stat "$a" refreshes)") $(delta "$reuse" "$(fixture_stat "$a" refresh_reuse)")"

# One dynamic slot (the logical replication launcher has the other), held
# for 2 s by a refresh at a slow authorization server: a step-up meanwhile
# waits for the slot, and its scope outlives the caller's rollback.
psql_q -c "ALTER SYSTEM SET mcp_oauth.durable_workers = 0" -c "ALTER SYSTEM SET max_worker_processes = 2" >/dev/null
restart_cluster
busy=$(new_row "$c" busy) narrow=$(new_row "$a" narrow)
fixture_config "$c" '{"expires_in": 2}'
sign_in "$busy"
sign_in "$narrow"
fixture_config "$c" '{"token_delay_ms": 2000}'
fixture_config "$a" '{"call_scope": "tools:call"}'
sleep 2.2
call "$busy" >/dev/null &
holder=$!
sleep 0.5
started=$(millis)
out=$(call "$narrow")
waited=$(( $(millis) - started ))
wait "$holder"
fixture_config "$a" '{}'
fixture_config "$c" '{}'
check "a step-up while the only slot is busy fails with MC001" "sign-in required" "$out"
check "... after waiting for the slot (the refresh held it)" "^1$" "$(( waited >= 1000 ))"
check "... without falling back to the caller's transaction" "^$" "$(grep -o 'current transaction only' <<<"$out")"
check "... and the next sign-in asks for the scope" "scope=[^&]*tools%3Acall" "$(as_alice -c "SELECT mcp_oauth_start('$narrow')")"
psql_q -c "ALTER SYSTEM RESET max_worker_processes" -c "ALTER SYSTEM RESET mcp_oauth.durable_workers" -c "ALTER SYSTEM RESET mcp_oauth.call_workers" >/dev/null
restart_cluster

fi

if wants 5; then
say "5. a failing call and an ALTER TABLE queued behind it do not hang"
fixture_config "$a" '{"api_key": "key-0001", "mcp_delay_ms": 3000, "call_error": true}'
keyed=$(as_alice -c "INSERT INTO user_mcp_servers (name, url, headers) VALUES ('keyed', '$a/mcp', '{\"X-Api-Key\": \"key-0001\"}') RETURNING id")
started=$(millis)
( call "$keyed" >"$dir/slow.out"; echo $(( $(millis) - started )) >"$dir/slow.ms" ) &
caller=$!
sleep 1
psql_q -c "SET lock_timeout = '20s'" -c "ALTER TABLE user_mcp_servers ADD COLUMN fault_probe int" >"$dir/alter.out" 2>&1 &
alter=$!
sleep 0.5
check "the ALTER TABLE is queued behind the call" "^1$" \
  "$(psql_q -At -c "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'ALTER TABLE user_mcp_servers%' AND wait_event_type = 'Lock'")"
wait "$caller"
wait "$alter"; alter_status=$?
fixture_config "$a" '{"api_key": "key-0001"}'
check "the call returns within seconds (the server's 3 s, then the workers' bounded lock waits)" "^1$" "$(( $(cat "$dir/slow.ms") < 10000 ))"
check "... with its error" "the tool failed" "$(cat "$dir/slow.out")"
check "the ALTER TABLE completes" "^0$" "$alter_status"
psql_q -c "ALTER TABLE user_mcp_servers DROP COLUMN fault_probe" >/dev/null
check "calls work after the ALTER TABLE" '"text": "after alter"' "$(call "$keyed" 'after alter')"
fixture_config "$a" '{}'

fi

if wants 6; then
say "6. a cancel during a refresh keeps the rotation"
cancelled=$(new_row "$a" cancelled)
expired "$cancelled"
fixture_config "$a" '{"token_reply_delay_ms": 2000}'
refreshes=$(fixture_stat "$a" refreshes) reuse=$(fixture_stat "$a" refresh_reuse)
out=$(psql_q -U alice -c "SET statement_timeout = '1s'" -c "SELECT mcp_call_tool('$cancelled', 'echo', '{\"text\": \"x\"}')" 2>&1)
fixture_config "$a" '{}'
check "the call is cancelled" "canceling statement due to statement timeout" "$out"
refute "... reading like PostgreSQL's own (no DETAIL, no backtrace)" "DETAIL|backtrace|panicked|\.rs:" "$out"
check "the next call succeeds without a new sign-in" '"text": "kept"' "$(call "$cancelled" kept)"
check "... after exactly one refresh" "^1$" "$(delta "$refreshes" "$(fixture_stat "$a" refreshes)")"
check "... and no reuse" "^0$" "$(delta "$reuse" "$(fixture_stat "$a" refresh_reuse)")"

fi

if wants 7; then
say "7. key rotation loses no token and no flow"
psql_q -c "INSERT INTO user_mcp_servers (user_id, name, url, headers)
           SELECT 'bulk', 'bulk ' || i, '$a/mcp', '{\"X-Api-Key\": \"bulk-key\"}' FROM generate_series(1, 10000) i" >/dev/null
rotating=$(new_row "$a" rotating)
flowing=$(new_row "$a" flowing)
resting=$(new_row "$a" resting) # signed in, not used during the rotation
sign_in "$rotating"
sign_in "$resting"
old_key=$(cat "$dir/encryption.key")
new_key=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
printf '%s,%s' "$new_key" "$old_key" >"$dir/encryption.key"
psql_q -c "SELECT pg_reload_conf()" >/dev/null
reuse=$(fixture_stat "$a" refresh_reuse) refreshes=$(fixture_stat "$a" refreshes)
psql_q -At -c "SELECT mcp_oauth_rotate_key()" >"$dir/rotate.out" 2>&1 &
rotator=$!
failures=0 rounds=0 during=0 probe="" probe_during=""
while kill -0 "$rotator" 2>/dev/null && [ "$rounds" -lt 300 ]; do
  rounds=$((rounds + 1))
  fixture_config "$a" '{"revoke_access": true}'
  out=$(call "$rotating" "r$rounds")
  grep -q "\"text\": \"r$rounds\"" <<<"$out" || failures=$((failures + 1))
  browser_approve "$(as_alice -c "SELECT mcp_oauth_start('$flowing')")" >"$dir/flow.location"
  # A refresh that completed while the rotation was still running.
  kill -0 "$rotator" 2>/dev/null && during=$(delta "$refreshes" "$(fixture_stat "$a" refreshes)")
  # Once, with the rotation under way: a row it has been through (the first
  # in the heap) is not held for the rest of the rotation.
  if [ "$rounds" = 2 ] && kill -0 "$rotator" 2>/dev/null; then
    probe=$(psql_q -c "SET lock_timeout = '1s'" \
      -c "UPDATE user_mcp_servers SET name = name || '.' WHERE ctid = (SELECT min(ctid) FROM user_mcp_servers WHERE user_id = 'bulk')" 2>&1 &&
      echo updated)
    kill -0 "$rotator" 2>/dev/null && probe_during=yes
  fi
done
wait "$rotator"
check "the rotation re-sealed every row" "^100[0-9][0-9]$" "$(cat "$dir/rotate.out")"
check "refreshes completed while the rotation ran (at least 2)" "^([2-9]|[1-9][0-9]+)$" "$during"
check "a row updated while the rotation ran is not held by it (rotated in short batches)" "^yes updated$" "${probe_during:-no} ${probe:-}"
check "... every call during the rotation succeeded" "^0$" "$failures"
check "... no refresh token was reused" "^0$" "$(delta "$reuse" "$(fixture_stat "$a" refresh_reuse)")"
check "the row still works after the rotation" '"text": "rotated"' "$(call "$rotating" rotated)"
check "the last flow started during the rotation can be finished" "^$flowing$" \
  "$(as_alice -c "SELECT mcp_oauth_callback('$(cat "$dir/flow.location")')" 2>&1)"
# Sealed bytes: a version byte, then the key id (the first 4 bytes of the
# key's SHA-256).
new_id=$(printf '%s' "$new_key" | xxd -r -p | sha256sum | head -c 8)
old_id=$(printf '%s' "$old_key" | xxd -r -p | sha256sum | head -c 8)
key_ids=$(psql_q -At -c "SELECT encode(substring(decode(substr(headers ->> 'X-Api-Key', 6), 'base64') FROM 2 FOR 4), 'hex') AS id, count(*)
                          FROM user_mcp_servers WHERE headers <> '{}' GROUP BY 1
                         UNION ALL
                         SELECT encode(substring(oauth_tokens FROM 2 FOR 4), 'hex'), count(*)
                          FROM user_mcp_servers WHERE oauth_tokens IS NOT NULL GROUP BY 1")
check "every secret is under the new key" "^$new_id\|[0-9]+$" "$key_ids"
refute "... none under the old one" "^$old_id\|" "$key_ids"
check "... the 10 000 header values among them" "^$new_id\|1000[0-9]$" "$key_ids"
check "... and the tokens of a row nothing refreshed meanwhile" "^$new_id$" \
  "$(psql_q -At -c "SELECT encode(substring(oauth_tokens FROM 2 FOR 4), 'hex') FROM user_mcp_servers WHERE id = '$resting'")"
psql_q -c "DELETE FROM user_mcp_servers WHERE user_id = 'bulk'" >/dev/null

fi

if wants 8; then
say "8. tokens are checked when they arrive"
for body in '{"access_token": "has space", "token_type": "Bearer"}' \
            '{"access_token": "ctl\u0001", "token_type": "Bearer"}' \
            '{"access_token": "ok", "refresh_token": "caf\u00e9", "token_type": "Bearer"}' \
            "{\"access_token\": \"$(head -c 20000 /dev/zero | tr '\0' a)\", \"token_type\": \"Bearer\"}"; do
  odd=$(new_row "$a" odd)
  location=$(browser_approve "$(as_alice -c "SELECT mcp_oauth_start('$odd')")")
  fixture_config "$a" "{\"token_body\": $body}"
  expect_error "a token response with ${body:0:60}" MC004 "token" -- -U alice -c "SELECT mcp_oauth_callback('$location')"
  fixture_config "$a" '{}'
  check "... leaves the row signed out" "^f$" "$(as_alice -c "SELECT oauth_authorized FROM mcp_servers WHERE id = '$odd'")"
done

fi

if wants 10; then
say "10. no secret in what a server says back"
fixture_config "$a" '{"api_key": "header-secret-9f8e7d6c5b4a", "echo_credentials": true}'
echoing=$(as_alice -c "INSERT INTO user_mcp_servers (name, url, headers) VALUES ('echo', '$a/mcp', '{\"X-Api-Key\": \"header-secret-9f8e7d6c5b4a\"}') RETURNING id")
out=$(psql_q -U alice -v VERBOSITY=verbose -c "SELECT mcp_call_tool('$echoing', 'echo')" 2>&1)
check "a JSON-RPC error that repeats the API key is still reported" "MC005" "$out"
refute "... without the key" "header-secret" "$out"
refute "... also in last_error" "header-secret" "$(as_alice -c "SELECT last_error FROM mcp_servers WHERE id = '$echoing'")"
echo_oauth=$(new_row "$a" echo_oauth)
fixture_config "$a" '{}'
sign_in "$echo_oauth"
fixture_config "$a" '{"echo_credentials": true}'
out=$(psql_q -U alice -v VERBOSITY=verbose -c "SELECT mcp_call_tool('$echo_oauth', 'echo')" 2>&1)
check "a JSON-RPC error that repeats the bearer token is still reported" "MC005" "$out"
refute "... without the token" "at-[0-9]+-" "$out"
refute "... also in last_error" "at-[0-9]+-" "$(as_alice -c "SELECT last_error FROM mcp_servers WHERE id = '$echo_oauth'")"
confidential=$(new_row "$a" confidential)
as_alice -c "SELECT mcp_oauth_set_client('$confidential', 'fixture-preregistered', 'fixture-preregistered-secret')" >/dev/null
location=$(browser_approve "$(as_alice -c "SELECT mcp_oauth_start('$confidential')")")
fixture_config "$a" '{"echo_credentials": true}'
out=$(psql_q -U alice -v VERBOSITY=verbose -c "SELECT mcp_oauth_callback('$location')" 2>&1)
check "an error_description that repeats the client secret is still reported" "MC004.*|invalid_grant" "$out"
refute "... without the secret" "fixture-preregistered-secret" "$out"
fixture_config "$a" '{}'
sign_in "$confidential"
# (invalid_scope: a refusal the client reports with its description, which
# an invalid_grant's is not.)
fixture_config "$a" '{"revoke_access": true, "echo_credentials": true, "echo_error": "invalid_scope"}'
out=$(psql_q -U alice -v VERBOSITY=verbose -c "SELECT mcp_call_tool('$confidential', 'echo')" 2>&1)
check "a refused refresh whose description repeats the refresh token is still reported" "invalid_scope" "$out"
check "... with the description, cleaned" "rejected refresh_token=\[redacted\] client_secret=\[redacted\]" "$out"
refute "... without the refresh token or the secret" "rt-[0-9]+-|fixture-preregistered-secret" "$out"
refute "... also in last_error" "rt-[0-9]+-|fixture-preregistered-secret" \
  "$(as_alice -c "SELECT last_error FROM mcp_servers WHERE id = '$confidential'")"
fixture_config "$a" '{}'
# The same credentials echoed in other shapes: without the scheme,
# form-urlencoded, JSON-escaped; with characters those encodings change.
shaped_key='Bearer sk-echo/4f+2a=9b'
fixture_config "$a" '{"api_key": "key-echo-0001"}'
shaped=$(as_alice -c "INSERT INTO user_mcp_servers (name, url, headers) VALUES ('shaped', '$a/mcp', '{\"X-Api-Key\": \"key-echo-0001\", \"Authorization\": \"$shaped_key\"}') RETURNING id")
for encoding in bare form json; do
  fixture_config "$a" "{\"api_key\": \"key-echo-0001\", \"echo_credentials\": true, \"echo_encoding\": \"$encoding\"}"
  out=$(psql_q -U alice -v VERBOSITY=verbose -c "SELECT mcp_call_tool('$shaped', 'echo')" 2>&1)
  check "a header echoed $encoding is still reported" "MC005" "$out"
  refute "... without any form of it" "sk-echo|4f\+2a|4f%2B|key-echo|4f\\\\/" "$out"
  refute "... also in last_error" "sk-echo|4f\+2a|4f%2B|key-echo" "$(as_alice -c "SELECT last_error FROM mcp_servers WHERE id = '$shaped'")"
done
odd=$(new_row "$a" odd_tokens)
fixture_config "$a" '{"token_suffix": "/r+s=t"}'
sign_in "$odd"
for encoding in form json; do
  fixture_config "$a" "{\"token_suffix\": \"/r+s=t\", \"revoke_access\": true, \"echo_credentials\": true, \"echo_error\": \"invalid_scope\", \"echo_encoding\": \"$encoding\"}"
  out=$(psql_q -U alice -v VERBOSITY=verbose -c "SELECT mcp_call_tool('$odd', 'echo')" 2>&1)
  check "a refresh token echoed $encoding by the token endpoint is still reported" "invalid_scope" "$out"
  refute "... without any part of it" "rt-[0-9]+-|%2Fr%2Bs|r\+s=t" "$out"
done
fixture_config "$a" '{}'
fixture_secrets=$(curl -sf "$a/_fixture/stats" | jq -r '.secrets[]' | sort -u)
check "the fixture lists the secrets it issued or received (tokens, verifiers)" "^([5-9]|[1-9][0-9]+)$" "$(grep -c . <<<"$fixture_secrets")"
leaked=$(grep -cFf <(grep -v '^$' <<<"$fixture_secrets"; echo header-secret-9f8e7d6c5b4a; echo sk-echo; echo key-echo-0001) "$dir/server.log")
check "no token, secret or key in the server log" "^0$" "$leaked"

fi

if wants 11; then
say "11. signals stay on the backend's thread"
# A host name (not an address) makes the backend resolve it on its own thread.
fixture_config "$a" '{"api_key": "key-named"}'
named=$(as_alice -c "INSERT INTO user_mcp_servers (name, url, headers) VALUES ('named', 'http://localhost:${a##*:}/mcp', '{\"X-Api-Key\": \"key-named\"}') RETURNING id")
# (Plain psql: the session goes on after each cancelled statement, and
# outlives the flood of cancels below.)
statements=(-c "SELECT mcp_call_tool('$named', 'echo')" -c "SELECT pg_sleep(0.5)")
for _ in $(seq 300); do statements+=(-c "SELECT mcp_call_tool('$named', 'echo')"); done
PGAPPNAME=signals "$PG_BIN/psql" -X -q -U alice -At "${statements[@]}" >"$dir/signals.out" 2>&1 &
session=$!
pid=""
for _ in $(seq 50); do
  pid=$(psql_q -At -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'signals'")
  [ -n "$pid" ] && break
  sleep 0.1
done
for _ in $(seq 100); do psql_q -At -c "SELECT pg_cancel_backend($pid)" >/dev/null 2>&1; done &
flood=$!
sleep 0.2
masks=""
for t in /proc/"$pid"/task/*; do
  [ "${t##*/}" = "$pid" ] && continue
  masks+="${t##*/}:$(awk '/^SigBlk/ {print $2}' "$t/status") "
done
wait "$flood" "$session"
check "the backend started threads of its own (DNS)" "[0-9]+:" "$masks"
bad=""
for entry in $masks; do
  mask=$((16#${entry#*:}))
  # SIGINT (2), SIGUSR1 (10), SIGALRM (14), SIGTERM (15), SIGQUIT (3), SIGHUP (1), SIGUSR2 (12)
  for sig in 1 2 3 10 12 14 15; do (( (mask >> (sig - 1)) & 1 )) || bad+="$entry/sig$sig "; done
done
check "every thread but the backend's blocks PostgreSQL's signals" "^$" "$bad"
check "the calls ran" '"text"|canceling statement' "$(cat "$dir/signals.out")"
fixture_config "$a" '{}'

fi

if wants 14; then
say "14. idle keep-alive connections are not a failure"
idle=$(as_alice -c "INSERT INTO user_mcp_servers (name, url, auth_type) VALUES ('idle', '$k/mcp', 'oauth') RETURNING id")
out=$(psql_q -U alice -At <<SQL 2>&1
SELECT mcp_oauth_start('$idle') AS url \gset
SELECT pg_sleep(2);
-- (A reset forgets the registration and the discovery this backend keeps.)
SELECT mcp_oauth_reset('$idle');
SELECT mcp_oauth_start('$idle') AS url \gset
\set location \`curl -s -o /dev/null -w '%{redirect_url}' :'url'\`
SELECT pg_sleep(2);
SELECT mcp_oauth_callback(:'location');
SELECT mcp_call_tool('$idle', 'echo', '{"text": "first"}');
SELECT pg_sleep(2);
SELECT mcp_call_tool('$idle', 'echo', '{"text": "second"}');
SQL
)
refute "sign-in requests after 2 s idle (server keep-alive 1 s)" "ERROR" "$out"
check "... complete the sign-in" "^$idle$" "$out"
check "an MCP call after 2 s idle succeeds" '"text": "second"' "$out"
fixture_config "$k" '{"expires_in": 2}'
sign_in "$idle"
fixture_config "$k" '{}'
refreshes=$(fixture_stat "$k" refreshes)
# The connection count is read inside the session, after its warm call (a
# new backend's first request always takes a new connection), and again at
# the end; the second read's own connection counts once.
count="\\! curl -sf --max-time 5 $k/_fixture/stats | jq -r '\"connections=\\(.connections)\"'"
out=$(psql_q -U alice -At -c "SELECT mcp_call_tool('$idle', 'echo', '{\"text\": \"warm\"}')" -c "$count" -c "SELECT pg_sleep(2.2)" \
  -c "SELECT mcp_call_tool('$idle', 'echo', '{\"text\": \"refreshed\"}')" -c "$count" 2>&1)
check "a refresh after 2 s idle succeeds" '"text": "refreshed"' "$out"
check "... with one refresh" "^1$" "$(delta "$refreshes" "$(fixture_stat "$k" refreshes)")"
counts=($(sed -n 's/^connections=//p' <<<"$out"))
check "the server closed the idle connection meanwhile: the requests after the wait (refresh, then call) took one new connection" "^1$" \
  "$(( $(delta "${counts[0]:-x}" "${counts[1]:-x}") - 1 ))"

fi

if wants 15; then
say "15. a refresh margin that fits the token"
short=$(new_row "$a" short)
fixture_config "$a" '{"expires_in": 30}'
sign_in "$short"
fixture_config "$a" '{}'
refreshes=$(fixture_stat "$a" refreshes)
call "$short" >/dev/null
call "$short" >/dev/null
check "30-second tokens are not refreshed on every call" "^0$" "$(delta "$refreshes" "$(fixture_stat "$a" refreshes)")"

fi

if wants 16; then
say "16. a disconnect during a refresh revokes the pair that refresh stores"
# The refresh is at the authorization server (which has rotated the pair and
# answers in 2 s) when the disconnect starts: the disconnect must wait for
# the new pair and revoke it, not the rotated one, and leave no token behind.
for level in "read committed" "repeatable read"; do
  racing=$(new_row "$a" racing)
  expired "$racing"
  fixture_config "$a" '{"token_reply_delay_ms": 2000}'
  revoked=$(fixture_stat "$a" 'revoked | length') refreshes=$(fixture_stat "$a" refreshes)
  ( call "$racing" racing >"$dir/racing.out" ) &
  caller=$!
  sleep 0.5
  check "$level: the refresh is at the authorization server when the disconnect starts" "^1$" \
    "$(delta "$refreshes" "$(fixture_stat "$a" refreshes)")"
  out=$(psql_q -U alice -At -c "BEGIN ISOLATION LEVEL $level" -c "SELECT mcp_oauth_disconnect('$racing')" -c "COMMIT" 2>&1)
  wait "$caller"
  fixture_config "$a" '{}'
  check "$level: the disconnect revokes" '"revocation": "revoked"' "$out"
  check "$level: ... a live refresh token: the new one" "^1 refresh_token$" \
    "$(delta "$revoked" "$(fixture_stat "$a" 'revoked | length')") $(fixture_stat "$a" 'revoked | last')"
  check "$level: no token is left on the row" "^f$" "$(as_alice -c "SELECT oauth_authorized FROM mcp_servers WHERE id = '$racing'")"
done

fi
if wants 17; then
say "17. no role can block or hold another user's refresh"
# mallory knows the row's id (NOTIFY payloads carry it) and takes every
# advisory lock SQL can name for it: the 32 low bits of the id under any
# class, in both of SQL's key spaces.
app_roles mallory
blocked=$(new_row "$a" blocked)
expired "$blocked"
low=$(python3 -c "import uuid; print(int.from_bytes(uuid.UUID('$blocked').bytes[12:16], 'big', signed=True))")
big=$(python3 -c "import uuid; print(int.from_bytes(uuid.UUID('$blocked').bytes[8:16], 'big', signed=True))")
psql_q -U mallory -c "SELECT pg_advisory_lock(x'6d636f61'::int, $low), pg_advisory_lock($big), pg_advisory_lock($low)" \
  -c "SELECT pg_sleep(4)" >/dev/null 2>&1 &
holder=$!
sleep 0.5
started=$(millis)
out=$(psql_q -U alice -c "SET statement_timeout = '3s'" -c "SELECT mcp_call_tool('$blocked', 'echo', '{\"text\": \"unblocked\"}')" 2>&1)
check "another role's advisory locks do not hold a refresh up" '"text": "unblocked"' "$out"
check "... (at once, not after they are released)" "^1$" "$(( $(millis) - started < 2000 ))"
wait "$holder"
# A refresh cancelled while it holds its lock leaves it held by nobody.
expired "$blocked"
fixture_config "$a" '{"token_reply_delay_ms": 1500}'
# (Plain psql: the session goes on after the cancelled statement.)
"$PG_BIN/psql" -X -q -U alice -c "SET statement_timeout = '500ms'" -c "SELECT mcp_call_tool('$blocked', 'echo')" -c "SELECT pg_sleep(2)" \
  -c "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory'" >"$dir/cancelled.out" 2>&1
fixture_config "$a" '{}'
check "a refresh cancelled while it held its lock releases it (the session holds no lock after)" "^ +0$" "$(grep -E '^ +[0-9]+$' "$dir/cancelled.out")"
fi

if wants 18; then
say "18. DBA work on the table during a refresh loses no pair"
# The authorization server rotates at once and answers after 2 s; meanwhile
# a DBA takes the table in SHARE mode (as CREATE INDEX does) for 5 s, longer
# than any lock wait of ours.
ddl=$(new_row "$a" ddl)
expired "$ddl"
fixture_config "$a" '{"token_reply_delay_ms": 2000}'
refreshes=$(fixture_stat "$a" refreshes) reuse=$(fixture_stat "$a" refresh_reuse)
call "$ddl" locked >"$dir/ddl.out" &
caller=$!
sleep 0.5
psql_q -c "BEGIN" -c "LOCK TABLE user_mcp_servers IN SHARE MODE" -c "SELECT pg_sleep(5)" -c "COMMIT" >"$dir/lock.out" 2>&1
wait "$caller"
fixture_config "$a" '{}'
check "a refresh whose answer arrives while a DBA holds the table in SHARE mode is stored" '"text": "locked"' "$(cat "$dir/ddl.out")"
check "... the next call works without a new sign-in" '"text": "after"' "$(call "$ddl" after)"
check "... one refresh in all, no refresh token reused" "^1 0$" \
  "$(delta "$refreshes" "$(fixture_stat "$a" refreshes)") $(delta "$reuse" "$(fixture_stat "$a" refresh_reuse)")"
fi

if wants 19; then
say "19. a key that cannot seal is found before a token request, not after"
# In one backend, which keeps the row decoded: a call, then the key file
# becomes unusable (readable by others), then the server refuses the access
# token. The refresh would rotate the pair at the server and then fail to
# seal it.
sealed=$(new_row "$a" sealed)
sign_in "$sealed"
call "$sealed" learn >/dev/null
learned "$sealed" modern >/dev/null # (what the call learned is on the row: no write during the case)
requests=$(fixture_stat "$a" token_requests) reuse=$(fixture_stat "$a" refresh_reuse)
out=$("$PG_BIN/psql" -X -q -U alice -At -v VERBOSITY=verbose <<SQL 2>&1
SELECT mcp_call_tool('$sealed', 'echo', '{"text": "warm"}');
\! chmod 644 $dir/encryption.key
\! curl -s -X POST -H 'content-type: application/json' -d '{"revoke_access": true}' $a/_fixture/config
SELECT pg_sleep(1.1);
SELECT mcp_call_tool('$sealed', 'echo', '{"text": "unsealable"}');
SQL
)
chmod 600 "$dir/encryption.key"
fixture_config "$a" '{}'
check "an unusable key is MC008 before the refresh" "ERROR:  MC008:.*can be read by other users" "$(tr -d '\n' <<<"$out")"
check "... nothing was sent to the token endpoint" "^0$" "$(delta "$requests" "$(fixture_stat "$a" token_requests)")"
sleep 1.1
check "with the key usable again the call refreshes and succeeds" '"text": "usable"' "$(call "$sealed" usable)"
check "... without reusing a refresh token" "^0$" "$(delta "$reuse" "$(fixture_stat "$a" refresh_reuse)")"
# A new sign-in whose backend keeps the row decoded: the same, before the
# code is redeemed.
location=$(browser_approve "$(as_alice -c "SELECT mcp_oauth_start('$sealed')")")
exchanges=$(fixture_stat "$a" code_exchanges)
out=$("$PG_BIN/psql" -X -q -U alice -At -v VERBOSITY=verbose <<SQL 2>&1
SELECT oauth_authorized FROM mcp_servers WHERE id = '$sealed';
\! chmod 644 $dir/encryption.key
SELECT pg_sleep(1.1);
SELECT mcp_oauth_callback('$location');
SQL
)
chmod 600 "$dir/encryption.key"
check "a callback with an unusable key is MC008" "ERROR:  MC008:.*can be read by other users" "$(tr -d '\n' <<<"$out")"
check "... before the code is redeemed" "^0$" "$(delta "$exchanges" "$(fixture_stat "$a" code_exchanges)")"
fi

if wants 20; then
say "20. an application's own foreign key does not stop a refresh"
# Inserting a chat message that references the server (its foreign key
# takes FOR KEY SHARE on the server's row), then calling a tool, in one
# transaction: the usual shape of an application's request.
psql_q -c "CREATE TABLE chat_messages (id serial PRIMARY KEY, server_id uuid NOT NULL REFERENCES user_mcp_servers (id), body text)" \
  -c "GRANT INSERT, SELECT ON chat_messages TO alice" -c "GRANT USAGE ON SEQUENCE chat_messages_id_seq TO alice" >/dev/null
chatty=$(new_row "$a" chatty)
expired "$chatty"
refreshes=$(fixture_stat "$a" refreshes)
out=$(psql_q -U alice -At -c "BEGIN" -c "INSERT INTO chat_messages (server_id, body) VALUES ('$chatty', 'hello')" \
  -c "SELECT mcp_call_tool('$chatty', 'echo', '{\"text\": \"referenced\"}')" -c "COMMIT" 2>&1)
check "a call that refreshes after the transaction inserted a row referencing the server" '"text": "referenced"' "$out"
check "... one refresh" "^1$" "$(delta "$refreshes" "$(fixture_stat "$a" refreshes)")"
check "... and the message was kept" "^1$" "$(psql_q -At -c "SELECT count(*) FROM chat_messages WHERE server_id = '$chatty'")"
# A lock that does conflict with the worker's still says so.
expired "$chatty"
expect_error "a row the caller locked FOR SHARE is still refused, with a hint to commit first" 55000 "Commit the change to the row first" \
  -- -U alice -c "BEGIN" -c "SELECT 1 FROM user_mcp_servers WHERE id = '$chatty' FOR SHARE" -c "SELECT mcp_call_tool('$chatty', 'echo')"
fi

if wants 21; then
say "21. a token is sent only to the URL of the row read it came with"
# A's MCP server refuses the call's token with 401, but only after 4 s;
# meanwhile the row's URL moves to C and the user signs in there. The call's
# retry after the 401 must not carry C's new token to A.
moving=$(new_row "$a" moving)
sign_in "$moving"
fixture_config "$a" '{"reject_tokens": true, "mcp_delay_ms": 4000}'
call "$moving" moved >"$dir/moving.out" &
caller=$!
sleep 1
as_alice -c "UPDATE user_mcp_servers SET url = '$c/mcp' WHERE id = '$moving'" >/dev/null
sign_in "$moving"
wait "$caller"
fixture_config "$a" '{}'
issued_at_c=$(curl -sf "$c/_fixture/stats" | jq -r '.secrets[] | select(startswith("at-"))')
check "C issued an access token meanwhile" "^at-" "$issued_at_c"
seen_at_a=$(curl -sf "$a/_fixture/stats" | jq -r '.bearer_tokens[]')
check "A received bearer tokens" "^at-" "$seen_at_a"
refute "A never received C's token" "$(paste -sd'|' <<<"$issued_at_c")" "$seen_at_a"
fi

if wants 22; then
say "22. a token issued with expires_in 0 is not refreshed on every call"
zero=$(new_row "$a" zero)
fixture_config "$a" '{"expires_in": 0}' # (refreshed tokens too)
sign_in "$zero"
refreshes=$(fixture_stat "$a" refreshes)
pids=()
for i in $(seq 32); do
  call "$zero" "z$i" >"$dir/zero.$i" &
  pids+=($!)
done
wait "${pids[@]}"
fixture_config "$a" '{}'
check "32 calls on a token issued with expires_in 0 succeed" "^32$" "$(cat "$dir"/zero.* | grep -c '"text": "z[0-9]*"')"
check "... without a refresh (a lifetime of 0 is no lifetime, as an absent one)" "^0$" "$(delta "$refreshes" "$(fixture_stat "$a" refreshes)")"
fi

if wants 23; then
say "23. a token answer too large to store holds nothing up"
# A refresh answered with a 300 KB scope (more than the worker can be handed):
# refused as an invalid response at once, and the row is not held by a
# worker waiting for what never comes.
huge=$(new_row "$a" huge)
expired "$huge"
# (From a file: one argument may not be that long.)
python3 -c 'import json; print(json.dumps({"token_body": {"access_token": "at-huge-00001", "token_type": "Bearer", "refresh_token": "rt-huge-00001", "scope": "s" * 300000}}))' >"$dir/huge.json"
curl -sf -X POST -H 'content-type: application/json' -d @"$dir/huge.json" "$a/_fixture/config" >/dev/null
started=$(millis)
out=$(psql_q -U alice -v VERBOSITY=verbose -c "SELECT mcp_call_tool('$huge', 'echo')" 2>&1)
fixture_config "$a" '{}'
check "a 300 KB scope is an invalid response (MC004)" "ERROR:  MC004:.*|scope is longer than" "$(tr -d '\n' <<<"$out")"
check "... at once" "^1$" "$(( $(millis) - started < 3000 ))"
check "... and the row is free for others at once" "^updated$" \
  "$(psql_q -c "SET lock_timeout = '2s'" -c "UPDATE user_mcp_servers SET name = 'huge2' WHERE id = '$huge'" 2>&1 && echo updated)"
fi

if wants 24; then
say "24. an extension owner that cannot log in is named, with the fix"
# The workers connect as the extension's owner: here a role that may not log in.
psql_q -c "CREATE ROLE ext_owner SUPERUSER NOLOGIN" -c "CREATE DATABASE owned" >/dev/null
psql_q -d owned -c "SET ROLE ext_owner" -c "CREATE EXTENSION mcp_oauth" -c "RESET ROLE" -c "GRANT mcp_oauth_user TO alice" >/dev/null
owned=$(psql_q -d owned -U alice -At -c "INSERT INTO user_mcp_servers (name, url, auth_type) VALUES ('owned', '$a/mcp', 'oauth') RETURNING id")
started=$(millis)
out=$(psql_q -d owned -U alice -v VERBOSITY=verbose -c "SELECT mcp_oauth_callback('$(browser_approve "$(psql_q -d owned -U alice -At -c "SELECT mcp_oauth_start('$owned')")")')" 2>&1)
check "a sign-in whose worker cannot connect says why: the owner cannot log in (MC008)" "ERROR:  MC008:" "$out"
check "... naming the role and the fix" "ext_owner.*LOGIN" "$(tr -d '\n' <<<"$out")"
check "... at once" "^1$" "$(( $(millis) - started < 4000 ))"
psql_q -c "ALTER ROLE ext_owner LOGIN" >/dev/null
check "with the owner able to log in, a sign-in works" "^$owned$" \
  "$(psql_q -d owned -U alice -At -c "SELECT mcp_oauth_callback('$(browser_approve "$(psql_q -d owned -U alice -At -c "SELECT mcp_oauth_start('$owned')")")')" 2>&1)"
fi

if wants 25; then
say "25. a reset during a sign-in's start wins"
# The start's discovery takes 1.5 s (the MCP server answers its probe late);
# the user resets the row meanwhile. The start must not store its flow and
# client afterwards, as if the reset had not happened.
racing_reset=$(new_row "$a" racing_reset)
fixture_config "$a" '{"mcp_delay_ms": 1500}'
as_alice -c "SELECT mcp_oauth_start('$racing_reset')" >"$dir/start.out" 2>&1 &
starter=$!
sleep 0.5
as_alice -c "SELECT mcp_oauth_reset('$racing_reset')" >/dev/null
wait "$starter"
fixture_config "$a" '{}'
check "a start that raced a reset is refused" "changed while the sign-in was starting" "$(cat "$dir/start.out")"
check "... and stores nothing of its flow or client" "^f\|f$" \
  "$(psql_q -At -c "SELECT coalesce(oauth_metadata ? 'flow', false), oauth_code_verifier IS NOT NULL FROM user_mcp_servers WHERE id = '$racing_reset'")"
fi

if wants 26; then
say "26. a worker killed while the authorization server answers loses nothing silently"
# The worker holding the row is terminated while the token endpoint, having
# rotated, takes 2 s to answer.
writers() { psql_q -At -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type IN ('mcp_oauth durable writer', 'mcp_oauth')" >/dev/null; }
killed=$(new_row "$a" killed)
expired "$killed"
fixture_config "$a" '{"token_reply_delay_ms": 2000}'
reuse=$(fixture_stat "$a" refresh_reuse)
call "$killed" killed >"$dir/killed.out" &
caller=$!
sleep 0.7
writers
wait "$caller"
fixture_config "$a" '{}'
first=$(cat "$dir/killed.out")
second=$(psql_q -U alice -v VERBOSITY=verbose -c "SELECT mcp_call_tool('$killed', 'echo', '{\"text\": \"after\"}')" 2>&1)
state=$(as_alice -c "SELECT reauth_required FROM mcp_servers WHERE id = '$killed'")
# The rotated pair is stored by another worker: the call and the next one
# work, and no refresh token is presented again.
check "the killed worker's refresh is stored all the same: the call works" '"text": "killed"' "$first"
check "... and so does the next one, without a new sign-in" '"text": "after"' "$second"
check "... the row asks for none" "^f$" "$state"
check "... and no refresh token was presented twice" "^0$" "$(delta "$reuse" "$(fixture_stat "$a" refresh_reuse)")"
# A sign-in whose worker is killed while the code is exchanged returns its
# server's id only if the tokens are stored.
signing=$(new_row "$a" signing)
location=$(browser_approve "$(as_alice -c "SELECT mcp_oauth_start('$signing')")")
fixture_config "$a" '{"token_reply_delay_ms": 2000}'
as_alice -c "SELECT mcp_oauth_callback('$location')" >"$dir/signing.out" 2>&1 &
finisher=$!
sleep 0.7
writers
wait "$finisher"
fixture_config "$a" '{}'
outcome=$(cat "$dir/signing.out")
authorized=$(as_alice -c "SELECT oauth_authorized FROM mcp_servers WHERE id = '$signing'")
check "a sign-in whose worker was killed completes, its tokens stored by another" "^$signing t$" "$(tr -d '\n' <<<"$outcome") $authorized"
fi

finish_checks faults
