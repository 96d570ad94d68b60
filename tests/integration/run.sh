#!/usr/bin/env bash
# Integration tests that pg_regress cannot express (NOTIFY payloads carry a
# process id; dump/restore and several databases need more than one
# session). Starts its own throwaway cluster; the extension must be installed.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

throwaway_cluster
psql_q -c "CREATE EXTENSION mcp_oauth" >/dev/null
app_roles carol
server_id=$(psql_q -U carol -At -c "INSERT INTO user_mcp_servers (name, url, auth_type) VALUES ('Linear', 'https://mcp.linear.example/mcp', 'oauth') RETURNING id")
headers_id=$(psql_q -U carol -At -c "INSERT INTO user_mcp_servers (name, url, headers) VALUES ('Keyed', 'https://keyed.example/mcp', '{\"X-Api-Key\": \"sk-integration-secret\"}') RETURNING id")

# 1. A new URL on an OAuth row notifies listeners, once, after commit.
out=$(psql_q -U carol <<SQL 2>&1
LISTEN mcp_oauth_reauth;
UPDATE user_mcp_servers SET url = 'https://mcp2.linear.example/mcp' WHERE id = '$server_id';
SELECT 1;
SQL
)
check "url change on an OAuth row sends NOTIFY mcp_oauth_reauth" \
  "Asynchronous notification \"mcp_oauth_reauth\" with payload \"\\{\"server_id\" : \"$server_id\", \"user_id\" : \"carol\"\\}\"" "$out"
check "exactly one notification" "^1$" "$(grep -c 'Asynchronous notification' <<<"$out")"

# 2. Already reauth_required: no second notification; headers rows never notify.
out=$(psql_q -U carol <<SQL 2>&1
LISTEN mcp_oauth_reauth;
UPDATE user_mcp_servers SET url = 'https://mcp3.linear.example/mcp' WHERE id = '$server_id';
UPDATE user_mcp_servers SET url = 'https://keyed2.example/mcp' WHERE id = '$headers_id';
SELECT 1;
SQL
)
refute "no notification for rows already marked or in headers mode" "Asynchronous notification" "$out"

# 3. A rolled-back change notifies no one.
psql_q -c "UPDATE user_mcp_servers SET reauth_required = false WHERE id = '$server_id'"
out=$(psql_q -U carol <<SQL 2>&1
LISTEN mcp_oauth_reauth;
BEGIN;
UPDATE user_mcp_servers SET url = 'https://mcp4.linear.example/mcp' WHERE id = '$server_id';
ROLLBACK;
SELECT 1;
SQL
)
refute "a rolled-back change sends nothing" "Asynchronous notification" "$out"

# 4. mcp_mark_reauth_required on an application table notifies a listener in
# another session.
psql_q <<SQL
CREATE TABLE app_users (id text PRIMARY KEY, password_hash text);
INSERT INTO app_users VALUES ('carol', 'h');
CREATE TRIGGER app_users_revoke AFTER UPDATE OF password_hash ON app_users
    FOR EACH ROW EXECUTE FUNCTION mcp_mark_reauth_required('id');
SQL
fifo="$dir/listen.fifo"
mkfifo "$fifo"
chmod 666 "$fifo"
( { echo "LISTEN mcp_oauth_reauth;"; sleep 2; echo "SELECT 1;"; } | "$PG_BIN/psql" -X -q >"$dir/listener.out" 2>&1 ) &
listener=$!
sleep 0.5
psql_q -c "UPDATE app_users SET password_hash = 'h2' WHERE id = 'carol'"
wait "$listener"
check "mcp_mark_reauth_required notifies another session" \
  "payload \"\\{\"server_id\" : \"$server_id\", \"user_id\" : \"carol\"\\}\"" "$(cat "$dir/listener.out")"
check "the row says why" "sign-in revoked by a change to public.app_users" \
  "$(psql_q -At -c "SELECT last_error FROM user_mcp_servers WHERE id = '$server_id'")"

# 5. pg_dump keeps the rows (the table is registered with pg_extension_config_dump).
"$PG_BIN/pg_dump" -Fc -f "$dir/dump" postgres
psql_q -c "CREATE DATABASE restored"
"$PG_BIN/pg_restore" -d restored "$dir/dump" 2>"$dir/restore.err"
check "dump and restore keep every row" "^2$" \
  "$(psql_q -d restored -At -c "SELECT count(*) FROM user_mcp_servers")"
check "restored rows keep their owner and headers" "^carol\|\{X-Api-Key\}$" \
  "$(psql_q -d restored -At -c "SELECT user_id, header_keys FROM user_mcp_servers WHERE id = '$headers_id'")"

# 6. A second database: the role exists already; each database has its own rows.
psql_q -c "CREATE DATABASE second" 
psql_q -d second -c "CREATE EXTENSION mcp_oauth"
check "second database starts empty" "^0$" "$(psql_q -d second -U carol -At -c "SELECT count(*) FROM mcp_servers")"

# 7. Error messages never repeat a header value, even for a superuser (whose
# constraint errors would otherwise carry a "Failing row contains" DETAIL).
# PostgreSQL itself logs the failing statement's text (log_min_error_statement);
# only our messages are checked here.
psql_q -c "INSERT INTO user_mcp_servers (user_id, name, url, headers) VALUES ('carol', 'x', 'nope', '{\"X-Key\": \"sk-log-canary\"}')" >/dev/null 2>&1
psql_q -c "UPDATE user_mcp_servers SET name = repeat('n', 81) WHERE id = '$headers_id'" >/dev/null 2>&1
messages=$(grep -v 'STATEMENT:' "$dir/server.log")
check "the failures were logged" "invalid MCP server URL" "$messages"
refute "logged errors do not repeat header values" "sk-integration-secret|sk-log-canary|Failing row" "$messages"

finish_checks schema
