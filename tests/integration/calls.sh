#!/usr/bin/env bash
# MCP calls and the token lifecycle against the fixture: headers mode, SSE,
# pages, both protocol eras and session expiry, warm calls, refresh before
# expiry and after a 401, rotation that survives ROLLBACK, invalid_grant,
# one refresh for many backends, cancellation and timeouts, and a response
# larger than mcp_oauth.max_response_bytes.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../lib.sh"

fixture_cluster
signin_ready
# Runs every statement even after an error (to see that the backend goes on).
psql_all() { "$PG_BIN/psql" -X -q "$@"; }

# Headers mode.
behave '{"api_key": "key-0123"}'
hid=$(as_alice -c "INSERT INTO user_mcp_servers (name, url, headers) VALUES ('Keyed', '$base/mcp', '{\"X-Api-Key\": \"key-0123\"}') RETURNING id")
check "headers mode lists tools" "^9$" "$(as_alice -c "SELECT count(*) FROM mcp_list_tools('$hid')")"
check "headers mode calls a tool" '"text": "hello"' "$(as_alice -c "SELECT mcp_call_tool('$hid', 'echo', '{\"text\": \"hello\"}')")"
as_alice -c "UPDATE user_mcp_servers SET headers = '{\"X-Api-Key\": \"wrong-key\"}' WHERE id = '$hid'" >/dev/null
expect_error "wrong headers are MC005, not a sign-in" MC005 "refused the configured headers" -- -U alice -c "SELECT mcp_call_tool('$hid', 'echo')"
check "... and recorded" "refused the configured headers" "$(as_alice -c "SELECT last_error FROM mcp_servers WHERE id = '$hid'")"
check "mcp_test_server reports the failure as a value" '"ok": false' "$(as_alice -c "SELECT mcp_test_server('$hid')")"
as_alice -c "UPDATE user_mcp_servers SET headers = '{\"X-Api-Key\": \"key-0123\"}' WHERE id = '$hid'" >/dev/null
check "mcp_test_server succeeds again" '"ok": true.*"tool_count": 9' "$(as_alice -c "SELECT mcp_test_server('$hid')")"
check "... and clears last_error" '^t$' "$(as_alice -c "SELECT last_error IS NULL FROM mcp_servers WHERE id = '$hid'" 2>&1)"


# OAuth: the era, x-mcp-header, warm calls, pages and SSE.
id=$(as_alice -c "INSERT INTO user_mcp_servers (name, url, auth_type) VALUES ('Fixture', '$base/mcp', 'oauth') RETURNING id")
sign_in "$id"
before=$(stat mcp_requests)
four_calls() {
  psql_q -U alice -At -c "SELECT mcp_call_tool('$id', 'echo', '{\"text\": \"1\"}')" -c "SELECT mcp_call_tool('$id', 'echo', '{\"text\": \"2\"}')" \
    -c "SELECT mcp_call_tool('$id', 'region_echo', '{\"region\": \"eu\"}')" -c "SELECT mcp_call_tool('$id', 'region_echo', '{\"region\": \"us\"}')"
}
out=$(four_calls)
check "Mcp-Param headers are mirrored (x-mcp-header)" '"text": "us"' "$out"
check "four calls in a new backend, nothing learned yet: five requests (one tools/list to learn x-mcp-header first; no handshake)" \
  "^5$" "$(delta "$before" "$(stat mcp_requests)")"
check "what was learned is kept on the row for every backend" '"modern": "2026-07-28".*"region_echo": \[\[\["region"\], "Region"\]\]' \
  "$(learned "$id" region_echo)"
before=$(stat mcp_requests)
out=$(four_calls)
check "four calls in another new backend: four requests (one per call)" "^4$" "$(delta "$before" "$(stat mcp_requests)")"
check "... mirroring the header from the first call" '"text": "eu"' "$out"
check "no initialize was ever sent" "^0$" "$(stat initializes)"
behave '{"page_size": 3, "sse": true}'
check "every page, over SSE" "^echo,add,fail,big,region_echo,confirm,extra_1,extra_2,extra_3$" \
  "$(as_alice -c "SELECT string_agg(name, ',') FROM mcp_list_tools('$id')")"
check "rows carry the schemas" "^t\|t$" \
  "$(as_alice -c "SELECT input_schema ? 'properties', output_schema IS NOT NULL FROM mcp_list_tools('$id') WHERE name = 'add'")"

behave '{"legacy_only": true}'
check "a session-based server is spoken to with initialize" '"text": "old"' \
  "$(as_alice -c "SELECT mcp_call_tool('$id', 'echo', '{\"text\": \"old\"}')")"
check "... and its session is kept on the row" '"legacy": \{"version": "2025-11-25", "session_id": "session-' "$(learned "$id" legacy)"
before=$(stat initializes) requests=$(stat mcp_requests)
out=$(psql_q -U alice -At -c "SELECT mcp_call_tool('$id', 'echo', '{\"text\": \"a\"}')" \
  -c "SELECT pg_catalog.pg_sleep(0)" -c "SELECT mcp_call_tool('$id', 'echo', '{\"text\": \"b\"}')")
check "another backend uses that session: no initialize" "^0$" "$(delta "$before" "$(stat initializes)")"
check "... one request per call" "^2$" "$(delta "$requests" "$(stat mcp_requests)")"
behave '{"legacy_only": true, "expire_sessions": true}'
check "an expired session (404) is replaced" '"text": "again"' \
  "$(as_alice -c "SELECT mcp_call_tool('$id', 'echo', '{\"text\": \"again\"}')")"
check "... and the new one kept" "^1$" "$(delta "$before" "$(stat initializes)")"
behave '{}'
as_alice -c "UPDATE user_mcp_servers SET headers = '{\"X-Trace\": \"trace-0001\"}' WHERE id = '$id'" >/dev/null
check "changing the headers forgets what was learned" "^t$" "$(as_alice -c "SELECT mcp_protocol IS NULL FROM user_mcp_servers WHERE id = '$id'" 2>&1)"
check "... and the next call learns again (2026-07-28)" '"text": "new"' \
  "$(as_alice -c "SELECT mcp_call_tool('$id', 'echo', '{\"text\": \"new\"}')")"
check "... sharing it again" '"modern": "2026-07-28"' "$(learned "$id" modern)"

# A tool error is a result; an unknown tool is MC005.
check "isError is a result" '"isError": true' "$(as_alice -c "SELECT mcp_call_tool('$id', 'fail')")"
expect_error "an unknown tool" MC005 "unknown tool" -- -U alice -c "SELECT mcp_call_tool('$id', 'nope')"

# Refresh shortly before expiry (a tenth of the lifetime, at most a
# minute), with rotation; the pair survives ROLLBACK.
behave '{"expires_in": 30}'
sign_in "$id"
before=$(stat refreshes)
as_alice -c "SELECT mcp_call_tool('$id', 'echo')" >/dev/null
check "a 30-second token is not refreshed with 29 seconds left" "^0$" "$(delta "$before" "$(stat refreshes)")"
behave '{"expires_in": 3}'
sign_in "$id"
sleep 3.2
behave '{"expires_in": 30}'
before=$(stat refreshes)
check "an expired token is refreshed first" '"text": "fresh"' \
  "$(as_alice -c "SELECT mcp_call_tool('$id', 'echo', '{\"text\": \"fresh\"}')")"
check "... once" "^1$" "$(delta "$before" "$(stat refreshes)")"
check "the refresh names the resource (RFC 8707)" "^$base/mcp$" "$(stat last_resource)"
# The pair survives ROLLBACK: a refresh inside a transaction that rolls back.
behave '{"expires_in": 3}'
sign_in "$id"
sleep 3.2
behave '{"expires_in": 30}'
before=$(stat refreshes) reuse=$(stat refresh_reuse)
check "a call that refreshes inside a transaction that then rolls back" '"text": "in transaction"' \
  "$(psql_q -U alice -c "BEGIN" -c "SELECT mcp_call_tool('$id', 'echo', '{\"text\": \"in transaction\"}')" -c "ROLLBACK" 2>&1)"
check "the rotated pair survives the caller's ROLLBACK" '"text": "after rollback"' \
  "$(as_alice -c "SELECT mcp_call_tool('$id', 'echo', '{\"text\": \"after rollback\"}')")"
check "... one refresh in all, and no refresh token presented twice" "^1 0$" \
  "$(delta "$before" "$(stat refreshes)") $(delta "$reuse" "$(stat refresh_reuse)")"
check "no sign-in was needed" "^t\|f$" "$(as_alice -c "SELECT oauth_authorized, reauth_required FROM mcp_servers WHERE id = '$id'")"

# Refresh once after a 401.
behave '{"revoke_access": true}'
before=$(stat refreshes)
check "a 401 refreshes and retries" '"text": "revoked"' \
  "$(as_alice -c "SELECT mcp_call_tool('$id', 'echo', '{\"text\": \"revoked\"}')")"
check "... with one refresh" "^1$" "$(delta "$before" "$(stat refreshes)")"

# invalid_grant: reauth_required and last_error, durable although the call raises.
behave '{"expires_in": 2, "revoke_access": true}'
as_alice -c "SELECT mcp_call_tool('$id', 'echo')" >/dev/null  # a 401, a refresh: now a token about to expire
sleep 2
behave '{"invalid_grant": true}'
out=$(psql_q -U alice -c "BEGIN" -c "SELECT mcp_call_tool('$id', 'echo')" -c "ROLLBACK" 2>&1)
check "invalid_grant is MC001 with a hint to sign in" "sign-in required" "$out"
check "... hint" "mcp_oauth_start" "$out"
check "reauth_required and last_error survive the ERROR and the ROLLBACK" "^f\|t\|reauth_required: the refresh was refused \(invalid_grant\)" \
  "$(as_alice -c "SELECT oauth_authorized, reauth_required, last_error FROM mcp_servers WHERE id = '$id'")"
expect_error "later calls ask for a sign-in" MC001 "new sign-in" -- -U alice -c "SELECT mcp_call_tool('$id', 'echo')"

# One refresh for many backends.
behave '{"expires_in": 3}'
sign_in "$id"
sleep 3  # now expired
behave '{"expires_in": 3600}'
before=$(stat refreshes)
pids=()
for i in 1 2 3 4 5 6; do
  psql_q -U alice -At -c "SELECT mcp_call_tool('$id', 'echo', '{\"text\": \"c$i\"}')" >"$dir/concurrent.$i" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
check "six concurrent callers with an expiring token: one refresh" "^1$" "$(delta "$before" "$(stat refreshes)")"
check "all six succeed" "^6$" "$(cat "$dir"/concurrent.* | grep -c '"text": "c[1-6]"')"

# Cancellation and timeouts: the backend stays usable.
behave '{"hang": true}'
start=$(date +%s%N)
out=$(psql_all -U alice -c "SET statement_timeout = '1s'" -c "SELECT mcp_call_tool('$id', 'echo')" -c "SELECT 'still usable'" 2>&1)
elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
check "statement_timeout ends a hung call" "canceling statement due to statement timeout" "$out"
check "... in about a second" "^(1[0-9]{3}|2[0-4][0-9]{2})$" "$elapsed"
check "... and the backend goes on" "still usable" "$out"
psql_q -U alice -At -c "SELECT pg_backend_pid()" -c "SELECT mcp_call_tool('$id', 'echo')" >"$dir/cancel.out" 2>&1 &
victim=$!
sleep 1
psql_q -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE '%mcp_call_tool%' AND pid <> pg_backend_pid()" >/dev/null
start=$(date +%s%N)
wait "$victim"
check "pg_cancel_backend ends a hung call" "canceling statement due to user request" "$(cat "$dir/cancel.out")"
check "... promptly" "^[0-9]{1,3}$" "$(( ($(date +%s%N) - start) / 1000000 ))"
behave '{"mcp_delay_ms": 3000}'
out=$(psql_q -U alice -c "SET mcp_oauth.request_timeout = '500ms'" -c "SELECT mcp_call_tool('$id', 'echo')" 2>&1)
check "a lowered request_timeout is MC007" "network timeout" "$out"

# A 50 MB result is cut at max_response_bytes (10MB by default).
behave '{"big_bytes": 52428800}'
out=$(psql_all -U alice -c "SELECT mcp_call_tool('$id', 'big')" -c "SELECT 'fine'" 2>&1)
check "a 50 MB response is refused" "larger than 10485760 bytes" "$out"
check "... and the backend is fine" "fine" "$out"

finish_checks calls
