#!/usr/bin/env bash
# All of a user's tools in one query (README, "The LLM loop"): every
# enabled server's tools with names unique across servers, a server that
# needs a sign-in or fails as a row with its status, one slow server bounded
# by the request timeout, and calls routed by qualified name.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../lib.sh"

fixture_cluster
signin_ready
app_roles bob
slow=$(start_fixture "$dir" slow)
behave '{"api_key": "key-0001"}'
keyed=$(as_alice -c "INSERT INTO user_mcp_servers (name, slug, url, headers) VALUES ('Keyed', 'keyed', '$base/mcp', '{\"X-Api-Key\": \"key-0001\"}') RETURNING id")
oauth=$(as_alice -c "INSERT INTO user_mcp_servers (name, slug, url, auth_type) VALUES ('Fixture', 'fixture', '$base/mcp', 'oauth') RETURNING id")
sign_in "$oauth"
pending=$(as_alice -c "INSERT INTO user_mcp_servers (name, slug, url, auth_type) VALUES ('Pending', 'pending', '$base/mcp', 'oauth') RETURNING id")
as_alice -c "INSERT INTO user_mcp_servers (name, slug, url, headers, enabled) VALUES ('Off', 'off', '$base/mcp', '{\"X-Api-Key\": \"key-0001\"}', false)" >/dev/null

tools() { as_alice -c "SELECT $1 FROM mcp_user_tools()"; }
per_server=$(as_alice -c "SELECT slug, count(*) FROM mcp_user_tools() WHERE status = 'ok' GROUP BY slug ORDER BY slug")
check "the tools of every usable server, in one query" "^keyed\|9$" "$per_server"
check "... OAuth servers too" "^fixture\|9$" "$per_server"
check "qualified names are slug__tool" "^keyed__echo$" "$(tools "qualified_name" | grep '^keyed__echo$')"
check "... unique across servers" "^18\|18$" "$(tools "count(qualified_name) || '|' || count(DISTINCT qualified_name)")"
check "... and valid as LLM function names" "^t$" "$(tools "bool_and(qualified_name ~ '^[A-Za-z0-9_-]{1,64}$') FILTER (WHERE status = 'ok')")"
check "with descriptions and schemas" '^Adds two numbers\.\|number$' \
  "$(as_alice -c "SELECT description, input_schema->'properties'->'a'->>'type' FROM mcp_user_tools() WHERE qualified_name = 'keyed__add'")"
check "a server that needs a sign-in is a row saying so" "^needs_sign_in\|.*\(MC001\)$" "$(as_alice -c "SELECT status, error FROM mcp_user_tools() WHERE slug = 'pending'")"
refute "a disabled server is left out" "^off$" "$(tools "DISTINCT slug")"
check "another user sees none of them" "^0$" "$(psql_q -U bob -At -c "SELECT count(*) FROM mcp_user_tools()")"

# One slow server: bounded by the request timeout, the others still listed.
fixture_config "$slow" '{"api_key": "key-0002", "hang": true}' >/dev/null
as_alice -c "INSERT INTO user_mcp_servers (name, slug, url, headers) VALUES ('Slow', 'slow', '$slow/mcp', '{\"X-Api-Key\": \"key-0002\"}')" >/dev/null
started=$(date +%s%3N)
out=$(as_alice -c "SET mcp_oauth.request_timeout = '1s'" -c "SELECT slug, status, error FROM mcp_user_tools() WHERE status <> 'ok' OR name = 'echo' ORDER BY slug")
elapsed=$(( $(date +%s%3N) - started ))
check "a server that does not answer is a row with its error" "^slow\|error\|.*\(MC007\)$" "$out"
check "... and the others are still listed" "^keyed\|ok\|$" "$out"
check "... within the timeout (ms)" "^[0-9]{1,4}$" "$elapsed"
as_alice -c "DELETE FROM user_mcp_servers WHERE slug = 'slow'" >/dev/null

# Calls by qualified name go to the right server.
check "a call by qualified name (headers mode)" '"text": "via keyed"' "$(as_alice -c "SELECT mcp_call_user_tool('keyed__echo', '{\"text\": \"via keyed\"}')")"
check "a call by qualified name (OAuth)" '"sum": 5' "$(as_alice -c "SELECT mcp_call_user_tool('fixture__add', '{\"a\": 2, \"b\": 3}')")"
expect_error "an unknown qualified name" 22023 "no enabled server of yours offers a tool named" -- -U alice -c "SELECT mcp_call_user_tool('nowhere__echo')"
expect_error "another user's tool" 22023 "no enabled server of yours" -- -U bob -c "SELECT mcp_call_user_tool('keyed__echo')"

finish_checks catalog
