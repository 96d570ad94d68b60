#!/usr/bin/env bash
# A tool's structuredContent is checked against its outputSchema (README,
# "Calling tools"): a result that breaks the declared shape is MC005 naming
# where, never data handed to the application.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../lib.sh"

fixture_cluster
signin_ready
behave '{"api_key": "key-0001"}'
id=$(as_alice -c "INSERT INTO user_mcp_servers (name, slug, url, headers) VALUES ('Calc', 'calc', '$base/mcp', '{\"X-Api-Key\": \"key-0001\"}') RETURNING id")
add() { as_alice -c "SELECT mcp_call_tool('$id', 'add', '{\"a\": 2, \"b\": 3}')->'structuredContent'"; }

lists=$(stat tools_lists)
check "a conforming result is returned" '^\{"sum": 5(\.0)?\}$' "$(add)"
check "... the schema learned from one tool list before the session's first call" "^1$" "$(delta "$lists" "$(stat tools_lists)")"
out=$(as_alice -c "SELECT mcp_call_tool('$id', 'add', '{\"a\": 1, \"b\": 1}')->'structuredContent'" -c "SELECT mcp_call_tool('$id', 'add', '{\"a\": 1, \"b\": 2}')->'structuredContent'")
check "... and no list again for the session's next calls" "^2$" "$(delta "$lists" "$(stat tools_lists)")"

behave '{"api_key": "key-0001", "structured_override": {"sum": "five", "secret": "key-0001"}}'
expect_error "a value of the wrong type" MC005 "the result of tool add does not match its outputSchema" -- -U alice -c "SELECT mcp_call_tool('$id', 'add', '{}')"
out=$(psql_q -U alice -v VERBOSITY=verbose -c "SELECT mcp_call_tool('$id', 'add', '{}')" 2>&1)
check "... the DETAIL names where" 'DETAIL:  At structuredContent/sum: ' "$out"
refute "... without repeating the value" '"five"|five' "$out"
refute "... or a header the row sends" "key-0001" "$out"
check "... recorded on the row" "does not match its outputSchema" "$(as_alice -c "SELECT last_error FROM mcp_servers WHERE id = '$id'")"
behave '{"api_key": "key-0001", "structured_override": {"total": 5}}'
expect_error "a required member missing" MC005 "does not match its outputSchema" -- -U alice -c "SELECT mcp_call_tool('$id', 'add', '{}')"
behave '{"api_key": "key-0001", "omit_structured": true}'
expect_error "no structuredContent where a schema is declared" MC005 "does not match its outputSchema" -- -U alice -c "SELECT mcp_call_tool('$id', 'add', '{}')"
out=$(psql_q -U alice -c "SELECT mcp_call_tool('$id', 'add', '{}')" 2>&1)
check "... saying so" "has no structuredContent" "$out"
check "a tool without a schema is not checked" '^"hi"$' "$(as_alice -c "SELECT mcp_call_tool('$id', 'echo', '{\"text\": \"hi\"}')->'content'->0->'text'")"
check "a tool error is a result, not checked" "^true$" "$(as_alice -c "SELECT mcp_call_tool('$id', 'fail', '{}')->'isError'")"
behave '{"api_key": "key-0001"}'
check "the server fixed: results pass again" '^\{"sum": 5(\.0)?\}$' "$(add)"
check "mcp_call_tools reports a mismatch for that call alone" "^false\|MC005,true$" \
  "$(behave '{"api_key": "key-0001", "omit_structured": true}'; as_alice -c "SELECT string_agg(coalesce(e->>'ok' || '|' || (e->'error'->>'sqlstate'), e->>'ok'), ',') FROM jsonb_array_elements(mcp_call_tools(jsonb_build_array(
     jsonb_build_object('server_id', '$id', 'name', 'add', 'arguments', '{}'::jsonb),
     jsonb_build_object('server_id', '$id', 'name', 'echo', 'arguments', '{\"text\": \"x\"}'::jsonb)))) e")"

finish_checks schemas
