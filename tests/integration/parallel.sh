#!/usr/bin/env bash
# Parallel tool calls in one statement (README, "Parallel calls"):
# mcp_call_tools runs an array of calls at once in the calling backend and
# returns their results in order, each with its own error.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../lib.sh"

fixture_cluster
signin_ready
app_roles bob
other=$(start_fixture "$dir" other)
behave '{"api_key": "key-0001"}'
keyed=$(as_alice -c "INSERT INTO user_mcp_servers (name, slug, url, headers) VALUES ('Keyed', 'keyed', '$base/mcp', '{\"X-Api-Key\": \"key-0001\"}') RETURNING id")
oauth=$(as_alice -c "INSERT INTO user_mcp_servers (name, slug, url, auth_type) VALUES ('Fixture', 'fixture', '$base/mcp', 'oauth') RETURNING id")
sign_in "$oauth"
pending=$(as_alice -c "INSERT INTO user_mcp_servers (name, slug, url, auth_type) VALUES ('Pending', 'pending', '$other/mcp', 'oauth') RETURNING id")

echo_call() { printf '{"id": "%s", "server_id": "%s", "name": "echo", "arguments": {"text": "%s"}}' "$1" "$2" "$1"; }
calls="[$(for i in $(seq 0 9); do [ "$i" -gt 0 ] && printf ','; echo_call "c$i" "$( ((i % 2)) && echo "$oauth" || echo "$keyed")"; done)]"

# Ten calls, each answered after 300 ms: all in flight at once.
behave '{"api_key": "key-0001", "mcp_delay_ms": 300}'
tool_calls=$(stat tool_calls)
out=$(as_alice -c "SELECT jsonb_array_length(r), (SELECT string_agg(e->>'id' || '=' || (e->'result'->'content'->0->>'text'), ',') FROM jsonb_array_elements(r) e)
                     FROM mcp_call_tools('$calls') r")
check "ten calls, ten results, in order, each its own" "^10\|c0=c0,c1=c1,c2=c2,c3=c3,c4=c4,c5=c5,c6=c6,c7=c7,c8=c8,c9=c9$" "$out"
check "... all ten in flight at once at the server" "^(1[0-9]|[2-9][0-9])$" "$(stat peak_mcp_in_flight)"
check "... each carried out once" "^10$" "$(delta "$tool_calls" "$(stat tool_calls)")"
behave '{"api_key": "key-0001"}'

# Each call its own error; the others still run.
out=$(as_alice -c "SELECT e->>'ok', coalesce(e->'error'->>'sqlstate', e->'result'->'content'->0->>'text')
                     FROM jsonb_array_elements(mcp_call_tools(jsonb_build_array(
                       jsonb_build_object('server_id', '$keyed', 'name', 'echo', 'arguments', jsonb_build_object('text', 'fine')),
                       jsonb_build_object('server_id', '$pending', 'name', 'echo'),
                       jsonb_build_object('server_id', gen_random_uuid(), 'name', 'echo'),
                       jsonb_build_object('server_id', '$keyed', 'name', 'echo', 'arguments', '[1]'::jsonb),
                       jsonb_build_object('name', 'keyed__echo', 'arguments', '{\"text\": \"by qualified name\"}'),
                       jsonb_build_object('name', 'nobody__echo'),
                       jsonb_build_object('server_id', '$oauth', 'name', 'echo', 'arguments', jsonb_build_object('text', 'oauth'))
                     ))) e")
check "a call that succeeds" "^true\|fine$" "$(sed -n 1p <<<"$out")"
check "a server that needs a sign-in: MC001, for that call alone" "^false\|MC001$" "$(sed -n 2p <<<"$out")"
check "a server that is not yours: 42704" "^false\|42704$" "$(sed -n 3p <<<"$out")"
check "arguments that are not an object: 22023" "^false\|22023$" "$(sed -n 4p <<<"$out")"
check "a call by qualified name" "^true\|by qualified name$" "$(sed -n 5p <<<"$out")"
check "an unknown qualified name: 22023" "^false\|22023$" "$(sed -n 6p <<<"$out")"
check "... and the call after them all succeeds" "^true\|oauth$" "$(sed -n 7p <<<"$out")"
check "an error's message never carries the server's secret" "^0$" \
  "$(as_alice -c "SELECT count(*) FROM jsonb_array_elements(mcp_call_tools(jsonb_build_array(jsonb_build_object('server_id', '$keyed', 'name', 'echo', 'arguments', '[1]'::jsonb)))) e WHERE e::text LIKE '%key-0001%'")"

# The array as a whole.
expect_error "not an array" 22023 "JSON array" -- -U alice -c "SELECT mcp_call_tools('{\"name\": \"x\"}')"
expect_error "more than 100 calls" 22023 "at most 100" -- -U alice -c "SELECT mcp_call_tools((SELECT jsonb_agg(jsonb_build_object('name', 'x')) FROM generate_series(1, 101)))"
expect_error "null" 22004 "calls" -- -U alice -c "SELECT mcp_call_tools(NULL)"
check "an empty array: an empty answer" '^\[\]$' "$(as_alice -c "SELECT mcp_call_tools('[]')")"
check "another user's servers: 42704 each, nothing sent" "^false\|42704,false\|42704$" \
  "$(psql_q -U bob -At -c "SELECT string_agg(e->>'ok' || '|' || (e->'error'->>'sqlstate'), ',') FROM jsonb_array_elements(mcp_call_tools('[$(echo_call a "$keyed"),$(echo_call b "$oauth")]')) e")"

# A refresh shared by concurrent calls on one row: one refresh, all succeed.
behave '{"api_key": "key-0001", "expires_in": 1}'
sign_in "$oauth"
behave '{"api_key": "key-0001", "mcp_delay_ms": 200}'
sleep 1.5
refreshes=$(stat refreshes)
out=$(as_alice -c "SELECT count(*) FILTER (WHERE (e->>'ok')::boolean) FROM jsonb_array_elements(mcp_call_tools('[$(for i in 1 2 3 4 5; do [ $i -gt 1 ] && printf ','; echo_call "r$i" "$oauth"; done)]')) e")
check "five calls on a row whose token expired all succeed" "^5$" "$out"
check "... with exactly one refresh" "^1$" "$(delta "$refreshes" "$(stat refreshes)")"
behave '{"api_key": "key-0001"}'

# A cancel ends them all, at once.
behave '{"api_key": "key-0001", "hang": true}'
started=$(date +%s%3N)
expect_error "a statement timeout ends the whole batch" 57014 "statement timeout" -- -U alice -c "SET statement_timeout = '500ms'" -c "SELECT mcp_call_tools('$calls')"
elapsed=$(( $(date +%s%3N) - started ))
check "... within a second" "^1$" "$(( elapsed < 1500 ))"
behave '{"api_key": "key-0001"}'
check "the backend stays usable afterwards" "^true$" "$(as_alice -c "SELECT (mcp_call_tools('[$(echo_call u "$keyed")]')->0->>'ok')")"

finish_checks parallel
