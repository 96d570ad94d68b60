#!/usr/bin/env bash
# mcp_oauth in a Citus cluster: a coordinator and two workers on this
# machine (loopback only), Citus 13.2 built from source by build.sh. The
# extension's tables stay on the coordinator (docs/scaling.md says why, with
# numbers); the application's own tables are distributed and reference
# tables. Everything runs through the coordinator: sign-in, calls, RLS, a
# refresh under concurrency, the queue, the reauth trigger on an
# application's reference table (refused on a distributed one), NOTIFY,
# and a join of the extension's view with a distributed table.
#
#   bash tests/citus/run.sh    (15 s once Citus is built; build.sh: 3 min)
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../lib.sh"
source "$here/cluster.sh"
bash "$here/build.sh" || exit 1

dir=$(scratch_dir)
trap 'stop_fixtures "$dir"; stop_citus "$dir"; rm -rf "$dir"' EXIT
start_citus "$dir" || exit 1
check "a coordinator and two workers" "^2$" "$(psql_q -At -c "SELECT count(*) FROM citus_get_active_worker_nodes()")"

base=$(start_fixture "$dir")
dev_settings
psql_q -c "CREATE EXTENSION mcp_oauth" >/dev/null
app_roles alice bob
check "CREATE EXTENSION through the coordinator reaches the workers (Citus propagates it)" "^0\.2\.0$" \
  "$(on_worker worker1 "SELECT extversion FROM pg_extension WHERE extname = 'mcp_oauth'")"

# The application's tables: messages distributed by user, accounts a
# reference table (on every node) with the reauth trigger.
psql_q >/dev/null <<'SQL'
CREATE TABLE messages (user_id text NOT NULL, id bigint GENERATED ALWAYS AS IDENTITY, body text, PRIMARY KEY (user_id, id));
SELECT create_distributed_table('messages', 'user_id');
GRANT SELECT, INSERT ON messages TO mcp_oauth_user;
INSERT INTO messages (user_id, body) SELECT u, 'message ' || g FROM unnest(ARRAY['alice', 'bob']) u, generate_series(1, 50) g;
CREATE TABLE accounts (id text PRIMARY KEY, password_hash text NOT NULL);
SELECT create_reference_table('accounts');
INSERT INTO accounts VALUES ('alice', 'h1'), ('bob', 'h2');
SQL
check "the application's table is distributed over both workers" "^2$" \
  "$(psql_q -At -c "SELECT count(DISTINCT nodename || nodeport) FROM citus_shards WHERE table_name = 'messages'::regclass AND nodeport <> ${port[coordinator]}")"

# Sign-in, calls and RLS through the coordinator.
id=$(as_alice -c "INSERT INTO user_mcp_servers (name, url, auth_type) VALUES ('Fixture', '$base/mcp', 'oauth') RETURNING id")
bob_id=$(psql_q -U bob -At -c "INSERT INTO user_mcp_servers (name, url, auth_type) VALUES ('Fixture', '$base/mcp', 'oauth') RETURNING id")
sign_in "$id"
check "sign-in through the coordinator" "^t$" "$(as_alice -c "SELECT oauth_authorized FROM mcp_servers WHERE id = '$id'")"
check "a call through the coordinator" '"text": "over citus"' "$(as_alice -c "SELECT mcp_call_tool('$id', 'echo', '{\"text\": \"over citus\"}')")"
check "RLS: bob sees only his row" "^$bob_id$" "$(psql_q -U bob -At -c "SELECT id FROM mcp_servers")"
expect_error "RLS: bob cannot call alice's server" 42704 "not found" -- -U bob -c "SELECT mcp_call_tool('$id', 'echo')"
check "the extension's view joins the distributed table (as alice: only her rows of both)" "^50\|alice$" \
  "$(as_alice -c "SELECT count(*), string_agg(DISTINCT m.user_id, ',') FROM messages m JOIN mcp_servers s ON s.user_id = m.user_id")"
check "the rows and their secrets stay on the coordinator (no worker has a row)" "^0 0$" \
  "$(echo "$(on_worker worker1 "SELECT count(*) FROM user_mcp_servers")" "$(on_worker worker2 "SELECT count(*) FROM user_mcp_servers")")"

# One refresh for four concurrent callers on an expired token.
behave '{"expires_in": 2}' >/dev/null
sign_in "$id"
sleep 2.5
behave '{"expires_in": 3600}' >/dev/null
before=$(stat refreshes)
pids=()
for i in 1 2 3 4; do
  as_alice -c "SELECT mcp_call_tool('$id', 'echo', '{\"text\": \"c$i\"}')" >"$dir/concurrent.$i" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
check "four concurrent callers through the coordinator with an expired token: one refresh" "^1$" "$(delta "$before" "$(stat refreshes)")"
check "... and all four calls succeed" "^4$" "$(cat "$dir"/concurrent.* | grep -c '"text": "c[1-4]"')"

# The queue: a call made after commit by a background worker.
call=$(as_alice -c "SELECT mcp_call_tool_async('$id', 'echo', '{\"text\": \"queued\"}')")
check "a queued call is made by a background worker of the coordinator" '"text": "queued"' \
  "$(as_alice -c "SELECT mcp_call_result($call, '10 seconds')")"

# The reauth trigger on the application's reference table: a password change
# through the coordinator marks alice's OAuth rows and notifies.
psql_q >/dev/null <<'SQL'
SET citus.enable_unsafe_triggers = on;
CREATE TRIGGER accounts_revoke_mcp AFTER UPDATE OF password_hash ON accounts
    FOR EACH ROW EXECUTE FUNCTION mcp_mark_reauth_required('id');
SQL
out=$(psql_q -U alice <<SQL 2>&1
LISTEN mcp_oauth_reauth;
SELECT 1;
\! $PG_BIN/psql -X -q -h 127.0.0.1 -p ${port[coordinator]} -U postgres -d postgres -c "UPDATE accounts SET password_hash = 'h3' WHERE id = 'alice'"
SELECT pg_sleep(0.5);
SQL
)
check "the password change marks alice's row reauth_required" "^t$" "$(as_alice -c "SELECT reauth_required FROM mcp_servers WHERE id = '$id'")"
check "... and not bob's" "^f$" "$(psql_q -U bob -At -c "SELECT reauth_required FROM mcp_servers WHERE id = '$bob_id'")"
check "... and notifies the coordinator's listeners" "Asynchronous notification \"mcp_oauth_reauth\" with payload \"\\{\"server_id\" : \"$id\", \"user_id\" : \"alice\"\\}\"" "$out"
expect_error "a call then asks for a new sign-in" MC001 "sign-in" -- -U alice -c "SELECT mcp_call_tool('$id', 'echo')"
sign_in "$id"
check "... and a new sign-in through the coordinator clears it" "^t$" "$(as_alice -c "SELECT oauth_authorized FROM mcp_servers WHERE id = '$id'")"

# On a distributed table the trigger runs on the workers, which hold no rows
# of user_mcp_servers: the change is refused rather than marking nothing.
psql_q >/dev/null <<'SQL'
SET citus.enable_unsafe_triggers = on;
CREATE TABLE profiles (user_id text PRIMARY KEY, email text NOT NULL);
SELECT create_distributed_table('profiles', 'user_id');
INSERT INTO profiles VALUES ('alice', 'alice@example.com');
CREATE TRIGGER profiles_revoke_mcp AFTER UPDATE OF email ON profiles
    FOR EACH ROW EXECUTE FUNCTION mcp_mark_reauth_required('user_id');
SQL
expect_error "the trigger on a distributed table (it would run on a worker) is refused" 0A000 "ran on a Citus worker" -- \
  -c "UPDATE profiles SET email = 'new@example.com' WHERE user_id = 'alice'"
check "... so the change did not happen unnoticed" "^alice@example.com$" "$(psql_q -At -c "SELECT email FROM profiles")"

echo "Citus $(psql_q -At -c "SELECT extversion FROM pg_extension WHERE extname = 'citus'"), coordinator and workers on ports ${port[*]}"
finish_checks citus
