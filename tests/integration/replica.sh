#!/usr/bin/env bash
# A hot standby (docs/scaling.md, "Read replicas"): calls that need no write
# work there; whatever must store its result fails with 25006 before any
# request is sent; failures are not recorded there.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../lib.sh"

stop_standby() { [ -d "$dir/standby" ] && as_pg "$PG_BIN/pg_ctl" -D "$dir/standby" -m fast -w stop >/dev/null 2>&1; }
fixture_cluster stop_standby
signin_ready
behave '{"api_key": "key-0001"}'
keyed=$(as_alice -c "INSERT INTO user_mcp_servers (name, url, headers) VALUES ('keyed', '$base/mcp', '{\"X-Api-Key\": \"key-0001\"}') RETURNING id")
fresh=$(as_alice -c "INSERT INTO user_mcp_servers (name, url, auth_type) VALUES ('fresh', '$base/mcp', 'oauth') RETURNING id")
due=$(as_alice -c "INSERT INTO user_mcp_servers (name, url, auth_type) VALUES ('due', '$base/mcp', 'oauth') RETURNING id")
pending=$(as_alice -c "INSERT INTO user_mcp_servers (name, url, auth_type) VALUES ('pending', '$base/mcp', 'oauth') RETURNING id")
sign_in "$fresh"
behave '{"api_key": "key-0001", "expires_in": 2}'
sign_in "$due"
behave '{"api_key": "key-0001"}'
location=$(browser_approve "$(as_alice -c "SELECT mcp_oauth_start('$pending')")")

# A streaming standby of that cluster.
as_pg "$PG_BIN/pg_basebackup" -h "$dir" -p 5432 -U postgres -D "$dir/standby" -R -X stream >/dev/null
cat >>"$dir/standby/postgresql.conf" <<CONF
port = 5433
CONF
as_pg "$PG_BIN/pg_ctl" -D "$dir/standby" -l "$dir/standby.log" -w start >/dev/null
on_standby() { PGPORT=5433 psql_q -U alice -At "$@"; }
check "the standby is in recovery" "^t$" "$(on_standby -c "SELECT pg_is_in_recovery()")"
sleep 2.2  # the 'due' token has expired

check "headers mode works on the standby" '"text": "r1"' \
  "$(on_standby -c "SELECT mcp_call_tool('$keyed', 'echo', '{\"text\": \"r1\"}')" 2>&1)"
check "a valid token works on the standby" '"text": "r2"' \
  "$(on_standby -c "SELECT mcp_call_tool('$fresh', 'echo', '{\"text\": \"r2\"}')" 2>&1)"
refreshes=$(stat refreshes) requests=$(stat requests) exchanges=$(stat code_exchanges)
expect_error "a token due for a refresh: 25006" 25006 "cannot store this on a standby" \
  -- -p 5433 -U alice -c "SELECT mcp_call_tool('$due', 'echo')"
check "... before the refresh was sent" "^0$" "$(delta "$refreshes" "$(stat refreshes)")"
expect_error "mcp_oauth_start: 25006" 25006 "cannot store this on a standby" -- -p 5433 -U alice -c "SELECT mcp_oauth_start('$pending')"
expect_error "mcp_oauth_callback: 25006" 25006 "cannot store this on a standby" -- -p 5433 -U alice -c "SELECT mcp_oauth_callback('$location')"
check "... nothing was sent for them" "^0$" "$(delta "$requests" "$(stat requests)")"
check "... and the code was not redeemed" "^0$" "$(delta "$exchanges" "$(stat code_exchanges)")"
expect_error "mcp_oauth_reset: 25006 (PostgreSQL's own)" 25006 "read-only transaction" -- -p 5433 -U alice -c "SELECT mcp_oauth_reset('$fresh')"
expect_error "a failing call raises its own error" MC005 "unknown tool" -- -p 5433 -U alice -c "SELECT mcp_call_tool('$keyed', 'nope')"
check "the sign-in the standby refused completes on the primary" "^$pending$" "$(as_alice -c "SELECT mcp_oauth_callback('$location')" 2>&1)"
check "... and the refresh happens there" '"text": "p"' "$(as_alice -c "SELECT mcp_call_tool('$due', 'echo', '{\"text\": \"p\"}')" 2>&1)"

finish_checks replica
