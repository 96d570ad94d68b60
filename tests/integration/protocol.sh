#!/usr/bin/env bash
# MCP 2026-07-28 from SQL against the fixture: version negotiation (-32022)
# remembered for every backend, event streams resumed with Last-Event-ID or
# left open after the answer, input-required results answered from SQL in
# both protocol eras under mcp_oauth.client_capabilities, and resources and
# prompts in both auth modes (every page, refresh after a 401, errors
# recorded on the row). Each call runs in its own connection, as from a pool.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../lib.sh"

fixture_cluster
signin_ready
# as_asking SQL: as alice, declaring the elicitation capability.
as_asking() { PGOPTIONS="-c mcp_oauth.client_capabilities={\"elicitation\":{\"form\":{}}}" as_alice -c "$1"; }

id=$(as_alice -c "INSERT INTO user_mcp_servers (name, url, auth_type) VALUES ('Fixture', '$base/mcp', 'oauth') RETURNING id")
sign_in "$id"

# Event streams (the tools listed first, so that only the call is resumed).
as_alice -c "SELECT count(*) FROM mcp_list_tools('$id')" >/dev/null
behave '{"sse_resume": true, "sse_retry_ms": 200}'
check "a stream that ends before the answer is resumed" '"text": "resumed"' \
  "$(as_alice -c "SELECT mcp_call_tool('$id', 'echo', '{\"text\": \"resumed\"}')" 2>&1)"
check "... once, with GET and the priming event's id as Last-Event-ID" '^1 stream-[0-9]+-.*-0$' \
  "$(stat resumptions) $(stat 'last_event_ids[0]')"
behave '{"sse_open": true}'
check "notifications are skipped and a stream left open ends the call at its answer" '"text": "open"' \
  "$(as_alice -c "SET mcp_oauth.request_timeout = '3s'" -c "SELECT mcp_call_tool('$id', 'echo', '{\"text\": \"open\"}')" 2>&1)"

# Input-required results, 2026-07-28 (SEP-2322): the application answers
# from SQL, on another connection.
behave '{}'
check "without declared capabilities the server does not ask" "did not declare elicitation" \
  "$(as_alice -c "SELECT mcp_call_tool('$id', 'confirm')")"
check "... and received none" '^\{\}$' "$(stat last_capabilities | jq -c .)"
expect_error "an unknown capability is refused when set" 22023 'not a client capability' \
  -- -U alice -c "SET mcp_oauth.client_capabilities = '{\"elicitaton\": {}}'"
first=$(as_asking "SELECT mcp_call_tool('$id', 'confirm')")
check "the question comes back as an input-required result" '"resultType": "input_required"' "$first"
check "... with the form to show" '"message": "Please confirm to continue"' "$first"
check "... and the declared capabilities reached the server" '"elicitation"' "$(stat last_capabilities | jq -c .)"
state=$(jq -r .requestState <<<"$first")
answer='{"confirm": {"action": "accept", "content": {"confirmed": true}}}'
check "the answer and the echoed requestState complete the call" 'confirmed: \{\\"confirmed\\":true\}' \
  "$(as_asking "SELECT mcp_call_tool('$id', 'confirm', '{}', '$answer', '$state')")"
check "... the server got the answer as given" '"confirmed":true' "$(stat 'answers[-1]' | jq -c .)"
expect_error "input_responses that are not an object are refused" 22023 "input_responses must be a JSON object" \
  -- -U alice -c "SELECT mcp_call_tool('$id', 'confirm', '{}', '[1]', 'x')"
expect_error "a NULL input_responses is refused" 22004 "input_responses" \
  -- -U alice -c "SELECT mcp_call_tool('$id', 'confirm', '{}', NULL, 'x')"

# A session-based server asks in the middle of the call: the same loop,
# the question keyed by its method, the schema's defaults filled in.
behave '{"legacy_only": true}'
first=$(as_asking "SELECT mcp_call_tool('$id', 'confirm')")
check "a session-based server's question comes back as an input-required result" \
  '"inputRequests": \{"elicitation/create": \{.*"method": "elicitation/create"' "$first"
check "... the server was told the question was cancelled meanwhile" '"action":"cancel"' "$(stat 'answers[-1]' | jq -c .)"
answer='{"elicitation/create": {"action": "accept", "content": {"confirmed": true}}}'
check "the answer on the repeated call completes it, with the schema's defaults" 'confirmed: \{\\"confirmed\\":true,\\"note\\":\\"none\\"\}' \
  "$(as_asking "SELECT mcp_call_tool('$id', 'confirm', '{}', '$answer')")"

# A session-based server that asks on the session's standalone stream and
# allows one at a time (as the TypeScript SDK). A row that has learned
# nothing lists the tools and then calls, in one statement: the call's
# stream must not be lost to the listing's, which the server has not yet
# seen close.
fresh=$(as_alice -c "INSERT INTO user_mcp_servers (name, url, auth_type) VALUES ('Standalone', '$base/mcp', 'oauth') RETURNING id")
sign_in "$fresh"
behave '{"legacy_only": true, "ask_on_standalone": true}'
check "a question on the standalone stream is answered with the given answer" 'confirmed: \{\\"confirmed\\":true,\\"note\\":\\"none\\"\}' \
  "$(as_asking "SELECT mcp_call_tool('$fresh', 'confirm', '{}', '$answer')" 2>&1)"
check "... on the call's own stream, opened again after a 409 for the listing's" '^2 [1-9]' "$(stat standalone_streams) $(stat standalone_conflicts)"

# Resources and prompts, OAuth mode, every page.
behave '{"page_size": 1}'
check "resources, every page" '^fixture://greeting,fixture://logo,fixture://notes/été$' \
  "$(as_alice -c "SELECT string_agg(uri, ',') FROM mcp_list_resources('$id')")"
check "... with their columns and whole definitions" '^image/png\|\["user"\]\|t$' \
  "$(as_alice -c "SELECT mime_type, annotations->'audience', resource ? 'uri' FROM mcp_list_resources('$id') WHERE name = 'logo'")"
check "resource templates" '^fixture://notes/\{name\}\|note$' \
  "$(as_alice -c "SELECT uri_template, name FROM mcp_list_resource_templates('$id')")"
check "prompts, every page, with their arguments" '^greet\|Greeting\|who,plain\|$' \
  "$(as_alice -c "SELECT string_agg(concat_ws('|', name, coalesce(title, ''), arguments->0->>'name'), ',') FROM mcp_list_prompts('$id')")"
check "a text resource" '^note été$' \
  "$(as_alice -c "SELECT mcp_read_resource('$id', 'fixture://notes/été')->'contents'->0->>'text'")"
check "a binary resource, as the server sent it (base64)" '^iVBORyBmaXh0dXJl$' \
  "$(as_alice -c "SELECT mcp_read_resource('$id', 'fixture://logo')->'contents'->0->>'blob'")"
check "a prompt with arguments" '^Say hello to Ada\.$' \
  "$(as_alice -c "SELECT mcp_get_prompt('$id', 'greet', '{\"who\": \"Ada\"}')->'messages'->0->'content'->>'text'")"
expect_error "prompt arguments must be strings" 22023 "args must be a JSON object of strings" \
  -- -U alice -c "SELECT mcp_get_prompt('$id', 'greet', '{\"who\": 7}')"
expect_error "an unknown resource is the server's JSON-RPC error" MC005 "JSON-RPC error -32002" \
  -- -U alice -c "SELECT mcp_read_resource('$id', 'fixture://nothing')"
check "... recorded on the row" "32002" "$(as_alice -c "SELECT last_error FROM mcp_servers WHERE id = '$id'")"
refreshes=$(stat refreshes)
behave '{"page_size": 1, "revoke_access": true}'
check "a 401 on a prompt list refreshes and retries" '^2$' "$(as_alice -c "SELECT count(*) FROM mcp_list_prompts('$id')" 2>&1)"
check "... with one refresh" "^1$" "$(delta "$refreshes" "$(stat refreshes)")"

# Headers mode.
behave '{"api_key": "key-0123", "page_size": 2}'
hid=$(as_alice -c "INSERT INTO user_mcp_servers (name, url, headers) VALUES ('Keyed', '$base/mcp', '{\"X-Api-Key\": \"key-0123\"}') RETURNING id")
check "headers mode: resources" '^3$' "$(as_alice -c "SELECT count(*) FROM mcp_list_resources('$hid')")"
check "headers mode: a resource" '"text": "Hello from the fixture."' "$(as_alice -c "SELECT mcp_read_resource('$hid', 'fixture://greeting')")"
check "headers mode: a prompt" '"text": "Tell me something."' "$(as_alice -c "SELECT mcp_get_prompt('$hid', 'plain')")"
as_alice -c "UPDATE user_mcp_servers SET headers = '{\"X-Api-Key\": \"wrong-key\"}' WHERE id = '$hid'" >/dev/null
expect_error "headers mode: refused headers are MC005" MC005 "refused the configured headers" \
  -- -U alice -c "SELECT * FROM mcp_list_prompts('$hid')"

# Version negotiation, on a row that knows nothing of the server yet: a
# server that knows 2026-07-28 but speaks only 2025-06-18 says so with
# -32022 (here with HTTP 200).
behave '{}'
id=$(as_alice -c "INSERT INTO user_mcp_servers (name, url, auth_type) VALUES ('Negotiating', '$base/mcp', 'oauth') RETURNING id")
sign_in "$id"
behave '{"versions": ["2025-06-18"], "version_error_ok": true}'
check "a -32022 refusal is answered with the newest revision both speak" '"text": "agreed"' \
  "$(as_alice -c "SELECT mcp_call_tool('$id', 'echo', '{\"text\": \"agreed\"}')" 2>&1)"
check "... 2025-06-18, through initialize" "^2025-06-18$" "$(stat last_initialize_version)"
check "... remembered on the row" '"version": "2025-06-18"' "$(learned "$id" '2025-06-18')"
before=$(stat modern_requests)
check "a new backend speaks 2025-06-18 from its first call" '"text": "again"' \
  "$(as_alice -c "SELECT mcp_call_tool('$id', 'echo', '{\"text\": \"again\"}')")"
check "... without trying 2026-07-28 again" "^0$" "$(delta "$before" "$(stat modern_requests)")"
behave '{"versions": ["2024-11-05"], "api_key": "key-0123"}'
kid=$(as_alice -c "INSERT INTO user_mcp_servers (name, url, headers) VALUES ('Old', '$base/mcp', '{\"X-Api-Key\": \"key-0123\"}') RETURNING id")
expect_error "no revision in common is MC005 naming what the server speaks" MC005 'no protocol version in common.*2024-11-05' \
  -- -U alice -c "SELECT mcp_call_tool('$kid', 'echo', '{\"text\": \"x\"}')"

# Sessions that end in the other shapes. A server that drops the session
# while the call's answer streams: the resumption is refused with 404. A
# tool call is then not repeated (it may have run); a read is, in a new
# session, and the dead session leaves the row at once.
behave '{}'
ended=$(as_alice -c "INSERT INTO user_mcp_servers (name, url, auth_type) VALUES ('Ending', '$base/mcp', 'oauth') RETURNING id")
sign_in "$ended"
behave '{"legacy_only": true}'
as_alice -c "SELECT mcp_call_tool('$ended', 'echo', '{\"text\": \"first\"}')" >/dev/null
dead=$(learned "$ended" session_id | jq -r '.era.legacy.session_id')
behave '{"legacy_only": true, "sse_resume": true, "sse_retry_ms": 50, "drop_session_mid_stream": true}'
calls=$(stat tool_calls)
out=$(psql_q -U alice -v VERBOSITY=verbose -c "SELECT mcp_call_tool('$ended', 'echo', '{\"text\": \"dropped\"}')" 2>&1)
check "a session dropped while a tool call's answer streamed: MC005" "ERROR:  MC005:" "$out"
check "... saying the call may have run" "whether it was carried out is unknown" "$out"
check "... and it was not repeated" "^1$" "$(delta "$calls" "$(stat tool_calls)")"
refute "... the dead session is off the row" "$dead" "$(as_alice -c "SELECT mcp_protocol::text FROM user_mcp_servers WHERE id = '$ended'")"
check "the next call works, in a new session" '"text": "next"' \
  "$(as_alice -c "SELECT mcp_call_tool('$ended', 'echo', '{\"text\": \"next\"}')" 2>&1)"
behave '{"legacy_only": true, "sse_resume": true, "sse_retry_ms": 50, "drop_session_mid_stream": true}'
initializes=$(stat initializes)
check "a list whose session is dropped while it streams is made again in a new session" '^echo,add' \
  "$(as_alice -c "SELECT string_agg(name, ',') FROM mcp_list_tools('$ended')" 2>&1)"
check "... one new session" "^1$" "$(delta "$initializes" "$(stat initializes)")"
# A session-based server that issued no session id, then wants one: its
# 400 (as the TypeScript SDK words it) starts a session and the call is made
# again.
behave '{"legacy_only": true, "sessionless": true}'
loose=$(as_alice -c "INSERT INTO user_mcp_servers (name, url, auth_type) VALUES ('Loose', '$base/mcp', 'oauth') RETURNING id")
sign_in "$loose"
check "a session-based server without sessions" '"text": "loose"' \
  "$(as_alice -c "SELECT mcp_call_tool('$loose', 'echo', '{\"text\": \"loose\"}')" 2>&1)"
check "... remembered without a session" '"legacy": \{"version": "2025-11-25", "session_id": null' "$(learned "$loose" legacy)"
behave '{"legacy_only": true}'
initializes=$(stat initializes)
check "when it starts to want one (400 Mcp-Session-Id required), a session is started and the call made again" '"text": "tight"' \
  "$(as_alice -c "SELECT mcp_call_tool('$loose', 'echo', '{\"text\": \"tight\"}')" 2>&1)"
check "... one initialize" "^1$" "$(delta "$initializes" "$(stat initializes)")"
check "... and the row shares the session" '"session_id": "session-' "$(learned "$loose" '"session_id": "session-')"

# A session-based server that requires a tool to run as a task (2025-11-25):
# called with `task`, its result fetched with tasks/result.
behave '{"legacy_only": true, "legacy_tasks": true}'
tasked=$(as_alice -c "INSERT INTO user_mcp_servers (name, url, auth_type) VALUES ('Tasked', '$base/mcp', 'oauth') RETURNING id")
sign_in "$tasked"
calls=$(stat tool_calls) results=$(stat task_results)
check "a tool the server requires to run as a task is called as one" '"text": "as a task"' \
  "$(as_alice -c "SELECT mcp_call_tool('$tasked', 'echo', '{\"text\": \"as a task\"}')" 2>&1)"
check "... one call, its result fetched with tasks/result" "^1 1$" "$(delta "$calls" "$(stat tool_calls)") $(delta "$results" "$(stat task_results)")"
check "... tools it does not require it of are called directly" '"structuredContent": \{"sum": 5' \
  "$(as_alice -c "SELECT mcp_call_tool('$tasked', 'add', '{\"a\": 2, \"b\": 3}')" 2>&1)"
# The session gone between the call and the fetch: the task was made, so
# the call may have run; it is not made again.
behave '{"legacy_only": true, "legacy_tasks": true, "end_session_at_task_result": true}'
calls=$(stat tool_calls)
out=$(psql_q -U alice -v VERBOSITY=verbose -c "SELECT mcp_call_tool('$tasked', 'echo', '{\"text\": \"lost fetch\"}')" 2>&1)
check "a task whose result cannot be fetched: MC005, the call may have run" "ERROR:  MC005:.*whether it was carried out is unknown" "$(tr -d '\n' <<<"$out")"
check "... and the call was not made again" "^1$" "$(delta "$calls" "$(stat tool_calls)")"
behave '{"legacy_only": true, "legacy_tasks": true}'
initializes=$(stat initializes)
check "... the next call works, in a new session" '"text": "after the lost fetch"' \
  "$(as_alice -c "SELECT mcp_call_tool('$tasked', 'echo', '{\"text\": \"after the lost fetch\"}')" 2>&1)"
check "... one new session" "^1$" "$(delta "$initializes" "$(stat initializes)")"

finish_checks protocol
