#!/usr/bin/env bash
# Watching the extension in production (README, "Observability"):
# mcp_oauth_stats (in shared memory when preloaded, per backend otherwise),
# the Extension wait event while a request is in flight, and LOG lines for
# sign-ins, new sign-ins needed and policy refusals, with no secret in them.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../lib.sh"

fixture_cluster
echo "log_min_messages = debug1" | cluster_conf
signin_ready
psql_q -c "CREATE ROLE monitor LOGIN IN ROLE pg_monitor" >/dev/null
behave '{"api_key": "key-0001"}'
keyed=$(as_alice -c "INSERT INTO user_mcp_servers (name, url, headers) VALUES ('Keyed', '$base/mcp', '{\"X-Api-Key\": \"key-0001\"}') RETURNING id")
oauth=$(as_alice -c "INSERT INTO user_mcp_servers (name, url, auth_type) VALUES ('Fixture', '$base/mcp', 'oauth') RETURNING id")
behave '{"api_key": "key-0001", "expires_in": 2}'
sign_in "$oauth"
behave '{"api_key": "key-0001"}'
call() { as_alice -c "SELECT mcp_call_tool('$1', 'echo', '{\"text\": \"x\"}')" >/dev/null 2>&1; }
call "$keyed"; call "$keyed"
as_alice -c "SELECT mcp_call_tool('$keyed', 'echo', '{}')" >/dev/null   # another backend
behave '{"api_key": "key-0001", "call_error": true}'
call "$keyed"
behave '{"api_key": "key-0001"}'
sleep 2.2
call "$oauth"   # the token expired: one refresh

stats() { psql_q -U monitor -At -c "SELECT $1 FROM mcp_oauth_stats WHERE server_id = '$2'"; }
check "calls and errors from every backend, kept for the cluster" '^4\|1\|\{"MC005": 1\}\|cluster$' "$(stats "calls, errors, errors_by_sqlstate, kept_in" "$keyed")"
check "last success and failure, mean and p95 latency" '^t\|t\|t\|t$' \
  "$(stats "last_success IS NOT NULL, last_failure > now() - interval '1 minute', mean_latency_ms > 0, p95_latency_ms >= mean_latency_ms / 2" "$keyed")"
check "sign-ins and refreshes" '^1\|1\|1\|0\|alice$' "$(stats "sign_ins, refreshes, calls, errors, user_id" "$oauth")"
expect_error "application roles cannot read every user's counters" 42501 "permission denied" -- -U alice -c "SELECT * FROM mcp_oauth_stats"
expect_error "... nor call the function behind it" 42501 "permission denied" -- -U alice -c "SELECT * FROM mcp_oauth_server_stats()"

# The Extension wait event while a request is in flight.
behave '{"api_key": "key-0001", "mcp_delay_ms": 3000}'
(as_alice -c "SELECT mcp_call_tool('$keyed', 'echo', '{\"text\": \"slow\"}')" >/dev/null 2>&1 &)
waiting=""
for _ in $(seq 40); do
  waiting=$(psql_q -At -c "SELECT wait_event_type || '/' || wait_event FROM pg_stat_activity WHERE query LIKE '%slow%' AND pid <> pg_backend_pid() AND state = 'active'")
  [ -n "$waiting" ] && break
  sleep 0.05
done
check "a request in flight shows as the Extension wait event" "^Extension/Extension$" "$waiting"
sleep 3.2
check "... and the wait ends with it" "^$" "$(psql_q -At -c "SELECT wait_event FROM pg_stat_activity WHERE query LIKE '%slow%' AND pid <> pg_backend_pid() AND state = 'active'")"
behave '{"api_key": "key-0001"}'

# LOG lines for the administrator.
blocked=$(as_alice -c "INSERT INTO user_mcp_servers (name, url, headers) VALUES ('Internal', 'https://10.1.2.3/mcp', '{\"X-Api-Key\": \"key-0001\"}') RETURNING id")
as_alice -c "SELECT mcp_call_tool('$blocked', 'echo')" >/dev/null 2>&1
as_alice -c "SELECT mcp_oauth_reset('$oauth')" >/dev/null
behave '{"api_key": "key-0001", "reject_tokens": true}'
sign_in "$oauth"
call "$oauth"
behave '{"api_key": "key-0001"}'
log=$(cat "$dir/server.log")
check "LOG: a sign-in completed" "LOG:  mcp_oauth: user alice signed in to server $oauth \\(issuer $base\\)" "$log"
check "LOG: a server needs a new sign-in" "LOG:  mcp_oauth: server $oauth of user alice needs a new sign-in" "$log"
check "DEBUG1: a refresh" "DEBUG:  mcp_oauth: refreshed the tokens of server $oauth at $base" "$log"
check "LOG: a policy refusal" "LOG:  mcp_oauth: blocked by the network policy: 10\\.1\\.2\\.3" "$log"
leaked=0 secrets=0
for secret in $(curl -sf "$base/_fixture/stats" | jq -r '.secrets[]') key-0001; do
  secrets=$((secrets + 1))
  grep -qF -- "$secret" <<<"$log" && leaked=$((leaked + 1))
done
check "the fixture lists what it issued and received (tokens, verifiers) and the key" "^([5-9]|[1-9][0-9]+)$" "$secrets"
check "no token, verifier or key in the log" "^0$" "$leaked"

# Not preloaded: each backend counts its own calls.
echo "shared_preload_libraries = ''" | cluster_conf
out=$(psql_q -At -c "SET ROLE alice" -c "SELECT mcp_call_tool('$keyed', 'echo', '{\"text\": \"x\"}')" -c "RESET ROLE" -c "SET ROLE monitor" -c "SELECT calls || '|' || kept_in FROM mcp_oauth_stats WHERE server_id = '$keyed'")
check "without preloading, the counters are the backend's own" "^1\|backend$" "$(tail -1 <<<"$out")"

finish_checks observability
