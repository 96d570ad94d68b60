#!/usr/bin/env bash
# Upgrades (README, "Releasing"): install the released 0.1.0 from its frozen
# script, sign in and store tokens, ALTER EXTENSION mcp_oauth UPDATE; the
# schema then equals a fresh install's object for object (tests/upgrade/
# schema.sql; pg_dump leaves extension members out), and the old row still
# calls tools and refreshes its token.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../lib.sh"

current=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT_DIR/Cargo.toml" | head -1)
fixture_cluster
dev_settings

# The released version, from its frozen install script.
psql_q -c "CREATE EXTENSION mcp_oauth VERSION '0.1.0'" >/dev/null
app_roles alice
check "0.1.0 installs from its frozen script" "^0\.1\.0$" "$(psql_q -At -c "SELECT extversion FROM pg_extension WHERE extname = 'mcp_oauth'")"
id=$(as_alice -c "INSERT INTO user_mcp_servers (name, url, auth_type) VALUES ('Fixture', '$base/mcp', 'oauth') RETURNING id")
behave '{"expires_in": 2}'
sign_in "$id"
behave '{}'
hid=$(as_alice -c "INSERT INTO user_mcp_servers (name, url, headers) VALUES ('Keyed', '$base/mcp', '{\"X-Api-Key\": \"key-0001\"}') RETURNING id")
check "a tool call under 0.1.0" '"text": "before"' "$(as_alice -c "SELECT mcp_call_tool('$id', 'echo', '{\"text\": \"before\"}')")"

out=$(psql_q -c "ALTER EXTENSION mcp_oauth UPDATE" 2>&1 && echo updated)
check "ALTER EXTENSION mcp_oauth UPDATE succeeds" "^updated$" "$out"
check "now at $current" "^${current//./\\.}$" "$(psql_q -At -c "SELECT extversion FROM pg_extension WHERE extname = 'mcp_oauth'")"

# The same objects, definitions, privileges and comments as a fresh install.
psql_q -c "CREATE DATABASE fresh" >/dev/null
psql_q -d fresh -c "CREATE EXTENSION mcp_oauth" >/dev/null
psql_q -At -f "$here/schema.sql" >"$dir/upgraded.schema"
psql_q -d fresh -At -f "$here/schema.sql" >"$dir/fresh.schema"
check "the fingerprint covers the schema" "^[0-9]{3,}$" "$(wc -l <"$dir/fresh.schema")"
differences=$(diff "$dir/fresh.schema" "$dir/upgraded.schema")
check "the upgraded schema equals a fresh install" "^$" "$differences"

# The old rows keep working: the token expired meanwhile and is refreshed.
sleep 2
refreshes=$(stat refreshes)
behave '{"api_key": "key-0001"}'
check "the old OAuth row calls a tool after the upgrade" '"text": "after"' "$(as_alice -c "SELECT mcp_call_tool('$id', 'echo', '{\"text\": \"after\"}')")"
check "... refreshing its expired token once" "^1$" "$(delta "$refreshes" "$(stat refreshes)")"
check "the old headers row calls a tool after the upgrade" '"text": "keyed"' "$(as_alice -c "SELECT mcp_call_tool('$hid', 'echo', '{\"text\": \"keyed\"}')")"
as_alice -c "SELECT mcp_oauth_reset('$id')" >/dev/null
sign_in "$id"
check "the old OAuth row signs in again after the upgrade" '"text": "again"' "$(as_alice -c "SELECT mcp_call_tool('$id', 'echo', '{\"text\": \"again\"}')")"

finish_checks upgrade
