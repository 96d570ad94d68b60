#!/usr/bin/env bash
# The extension against servers people really run, unmodified, from their
# official packages: MCP servers built on the TypeScript SDK (npm
# @modelcontextprotocol/sdk, stateful and stateless Streamable HTTP) and on
# the Python SDK (PyPI mcp, FastMCP), rmcp's own server with its tasks
# runtime (crates/peer-rmcp, for queued calls run as tasks), behind an
# OpenID-certified authorization server (npm oidc-provider: refresh-token
# rotation with reuse detection, revocation, its own login and consent
# forms, submitted here as a browser would); and, for DPoP, the TS SDK
# server behind Auth0's resource-server middleware (npm
# express-oauth2-jwt-bearer). What each side counted is read from its own
# events.
#
#   bash tests/peers/run.sh [direct|pgbouncer|no-worker-slots]...
#
# direct: every scenario at every isolation level; pgbouncer: the same
# through PgBouncer in transaction pooling; no-worker-slots: the same with
# every dynamic background-worker slot taken. Default: all three.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../lib.sh"
source "$here/browser.sh"
node="$NODE22_BIN/node"
peers="$TOOLS_DIR/peers"
python="$peers/py/bin/python"
[ -x "$node" ] && [ -d "$peers/node_modules/oidc-provider" ] && [ -x "$python" ] && command -v pgbouncer >/dev/null ||
  { echo "run scripts/setup.sh first (Node 22, the peers' npm and PyPI packages, pgbouncer)"; exit 2; }
# The servers run next to their installed packages.
cp "$here"/*.mjs "$here"/py_server.py "$peers"/
modes=("$@")
[ ${#modes[@]} -gt 0 ] || modes=(direct pgbouncer no-worker-slots)

throwaway_cluster
dev_settings
psql_q -c "CREATE EXTENSION mcp_oauth" >/dev/null
app_roles alice

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# start_peer NAME COMMAND...: runs a server in the background (stopped at
# exit) and prints the first line it writes (its URL).
start_peer() {
  local name=$1
  shift
  (cd "$peers" && exec "$@") >"$dir/$name.out" 2>"$dir/$name.err" &
  echo $! >"$dir/$name.pid"
  for _ in $(seq 150); do [ -s "$dir/$name.out" ] && break; sleep 0.1; done
  head -1 "$dir/$name.out"
}
# A server that does not stop within 5 s (uvicorn waits for its clients'
# keep-alive connections, such as a queue worker's idle one) is killed: a
# restart must free the port for the new one.
stop_peer() {
  local pid
  pid=$(cat "$dir/$1.pid")
  kill "$pid" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    kill -9 "$pid" 2>/dev/null
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$dir/$1.pid" "$dir/$1.out"
}
# counter URL FIELD: a number a peer counted. A peer that cannot be read, or
# a field it does not have, gives "unreadable", which no numeric check accepts.
counter() {
  local out
  out=$(curl -sf --max-time 5 "$1/_test/stats" | jq -e -r ".$2 | numbers" 2>/dev/null) && echo "$out" || echo unreadable
}
oidc_stat() { counter "$issuer" "$1"; }
# delta BEFORE AFTER: AFTER - BEFORE, or "unreadable".
delta() { [[ $1 =~ ^[0-9]+$ && $2 =~ ^[0-9]+$ ]] && echo $(($2 - $1)) || echo unreadable; }

# rmcp's own server (crates/peer-rmcp: rmcp's ServerHandler, TaskManager and
# Streamable HTTP service), for the tasks extension.
(cd "$ROOT_DIR" && cargo build -q -p mcp_oauth_peer_rmcp) || { echo "the rmcp peer did not build"; exit 1; }
rmcp_url=$(start_peer rmcp "${CARGO_TARGET_DIR:-$ROOT_DIR/target}/debug/mcp-oauth-peer-rmcp" 0)
rmcp_stat() { curl -sf --max-time 5 "$rmcp_url/stats" | jq -r "$1" 2>/dev/null || echo unreadable; }

issuer=$(start_peer oidc "$node" oidc.mjs 0 300)
[ -n "$issuer" ] || { echo "the authorization server did not start:"; cat "$dir/oidc.err"; exit 1; }

# peer_sign_in ID [LOGIN]: alice signs in to row ID at the provider's forms.
peer_sign_in() {
  local url callback
  url=$(as_alice -c "SELECT mcp_oauth_start('$1')" 2>&1) || { echo "$url"; return 1; }
  callback=$(oidc_browser "$url" "${2:-alice}") || return 1
  as_alice -c "SELECT mcp_oauth_callback('$callback')" 2>&1
}
call() { as_alice -c "SELECT mcp_call_tool('$1', '${2:-echo}', '${3:-{\"text\": \"hi\"\}}')" 2>&1; }
ttl() { curl -sf -X POST "$issuer/_test/ttl?seconds=$1" >/dev/null; }
# expired ID: the row's access token expires within 2 s (one refresh at a
# short lifetime), and the next tokens live 5 minutes.
expired() {
  ttl 2
  curl -sf -X POST "$issuer/_test/revoke-access" >/dev/null
  call "$1" >/dev/null
  ttl 300
  sleep 2.5
}

# concurrent_calls N ID TAG LEVEL: N callers at once, each in a transaction
# at LEVEL, echo "TAG i"; prints how many were answered (the others'
# errors go to standard error).
concurrent_calls() {
  local n=$1 id=$2 tag=$3 level=$4 i ok pids=()
  for i in $(seq "$n"); do
    as_alice -c "BEGIN ISOLATION LEVEL $level" -c "SELECT mcp_call_tool('$id', 'echo', '{\"text\": \"$tag $i\"}')" -c "COMMIT" \
      >"$dir/$tag.$i" 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}"
  ok=$(cat "$dir/$tag".* | grep -c "\"text\": \"$tag [0-9]*\"")
  [ "$ok" = "$n" ] || grep -h ERROR "$dir/$tag".* | sort | uniq -c | head -5 >&2
  rm -f "$dir/$tag".*
  echo "$ok"
}

# herd ID LEVEL: 16 callers at once, each in a transaction at LEVEL, on an
# expired token: all succeed, with exactly one refresh and no reuse.
herd() {
  local id=$1 level=$2 refreshes errors revoked
  expired "$id"
  refreshes=$(oidc_stat 'grants.refresh_token') errors=$(oidc_stat 'grant_errors.invalid_grant') revoked=$(oidc_stat revoked_grants)
  check "$label, $level: 16 callers on an expired token all succeed" "^16$" "$(concurrent_calls 16 "$id" herd "$level")"
  check "$label, $level: ... with exactly one refresh" "^1$" "$(delta "$refreshes" "$(oidc_stat 'grants.refresh_token')")"
  check "$label, $level: ... and no refresh token reused" "^0 0$" \
    "$(delta "$errors" "$(oidc_stat 'grant_errors.invalid_grant')") $(delta "$revoked" "$(oidc_stat revoked_grants)")"
}

# listen_for CHANNEL SECONDS FILE: a session that LISTENs meanwhile, in the
# background (its pid in $listener).
listen_for() {
  ({ echo "LISTEN $1;"; sleep "$2"; echo "SELECT 1;"; } | "$PG_BIN/psql" -X -q -h "$direct_host" -p 5432 >"$3" 2>&1) &
  listener=$!
}

# rmcp_tasks: queued calls to rmcp's server, which runs slow_echo as a task
# (the MCP tasks extension) for a client that declares it.
rmcp_tasks() {
  [[ "rmcp tasks" =~ ${PEERS_ONLY:-.} ]] || return 0
  local id qid
  id=$(as_alice -c "INSERT INTO user_mcp_servers (name, url) VALUES ('rmcp', '$rmcp_url/mcp') RETURNING id")
  check "rmcp server: a call" '"text": "plain"' "$(call "$id" echo '{"text": "plain"}')"
  check "rmcp server: a synchronous call to slow_echo is not made a task" '"text": "inline"' \
    "$(call "$id" slow_echo '{"text": "inline", "ms": 100}')"
  check "rmcp server: ... no task made" "^0$" "$(rmcp_stat .tasks_created)"
  qid=$(as_alice -c "SELECT mcp_call_tool_async('$id', 'slow_echo', '{\"text\": \"as a task\", \"ms\": 1500}')")
  check "rmcp server: a queued call it runs as a task: its result" '"text": "as a task"' "$(as_alice -c "SELECT mcp_call_result($qid, '30s')" 2>&1)"
  check "rmcp server: ... one task, polled with tasks/get, the work done once" "^1 [1-9][0-9]* 1$" \
    "$(rmcp_stat '"\(.tasks_created) \(.task_polls) \(.executed["as a task"])"')"
  check "rmcp server: ... the task's id kept on the call" "^succeeded\|.+" "$(as_alice -c "SELECT status || '|' || coalesce(task_id, '') FROM mcp_tool_calls WHERE id = $qid")"
  qid=$(as_alice -c "SELECT mcp_call_tool_async('$id', 'slow_echo', '{\"text\": \"cancel me\", \"ms\": 60000}')")
  for _ in $(seq 50); do [ -n "$(as_alice -c "SELECT task_id FROM mcp_tool_calls WHERE id = $qid")" ] && break; sleep 0.1; done
  check "rmcp server: cancelling a call it runs as a task" "^t$" "$(as_alice -c "SELECT mcp_cancel_call($qid)")"
  for _ in $(seq 50); do [ "$(rmcp_stat .task_cancels)" = 1 ] && break; sleep 0.1; done
  check "rmcp server: ... sends tasks/cancel, and the work is never done" "^1 null$" "$(rmcp_stat '"\(.task_cancels) \(.executed["cancel me"])"')"
  check "rmcp server: ... the call ends cancelled" "^cancelled$" "$(as_alice -c "SELECT status FROM mcp_tool_calls WHERE id = $qid")"
}

# service_client: a row with no user (client credentials) at oidc-provider's
# own client_credentials grant, calling the TS SDK server, which checks the
# token by introspection as it checks users' tokens.
service_client() {
  [[ "service client" =~ ${PEERS_ONLY:-.} ]] || return 0
  local id grants
  id=$(as_alice -c "INSERT INTO user_mcp_servers (name, slug, url, auth_type) VALUES ('Service', 'service', '$ts_url', 'client_credentials') RETURNING id")
  as_alice -c "SELECT mcp_oauth_set_client('$id', 'mcp-service', 'mcp-service-client-secret')" >/dev/null
  grants=$(oidc_stat grants.client_credentials)
  check "service client: the TS SDK server answers a call with oidc-provider's client credentials token" '"text": "hi"' "$(call "$id")"
  check "service client: ... after one client_credentials grant" "^1$" "$(delta "$grants" "$(oidc_stat grants.client_credentials)")"
  check "service client: ... for the server's resource (RFC 8707)" "^$ts_url$" "$(curl -s "$issuer/_test/stats" | jq -r '.resources[-1]')"
  check "service client: ... which whoami sees as the client itself" "mcp-service" "$(call "$id" whoami '{}')"
  call "$id" >/dev/null
  check "service client: the next call reuses the token" "^1$" "$(delta "$grants" "$(oidc_stat grants.client_credentials)")"
  curl -sf -X POST "$issuer/_test/revoke-access" >/dev/null
  check "service client: a revoked token: a new one, and the call answered" '"text": "hi"' "$(call "$id")"
  check "service client: ... after one more grant" "^2$" "$(delta "$grants" "$(oidc_stat grants.client_credentials)")"
  as_alice -c "SELECT mcp_oauth_set_client('$id', 'mcp-service', 'not-the-service-secret')" >/dev/null
  expect_error "service client: a wrong secret is refused by the provider" MC001 "credentials were refused" -- -U alice -c "SELECT mcp_call_tool('$id', 'echo')"
  check "service client: ... and marks the row, no retry until new credentials" "^t$" "$(as_alice -c "SELECT reauth_required FROM mcp_servers WHERE id = '$id'")"
}

# dpop_resource: a resource server that takes only DPoP-bound tokens
# (Auth0's express-oauth2-jwt-bearer in front of the TS SDK server, checking
# JWT access tokens with oidc-provider's keys), behind an oidc-provider that
# demands its nonce in every proof (jwt-dpop-nonce).
dpop_resource() {
  [[ "DPoP resource" =~ ${PEERS_ONLY:-.} ]] || return 0
  local id before errors revoked token out tool_names=add,admin_action,echo,slow,whoami
  das() { counter "$dpop_issuer" "$1"; }
  dttl() { curl -sf -X POST "$dpop_issuer/_test/ttl?seconds=$1" >/dev/null; }
  id=$(as_alice -c "INSERT INTO user_mcp_servers (name, url, auth_type) VALUES ('DPoP resource', '$dpop_url', 'oauth') RETURNING id")
  # The first token lives 2 s, so that the callers below find it expired.
  dttl 2
  check "DPoP resource: sign-in at the provider's forms" "^$id$" "$(peer_sign_in "$id")"
  dttl 300
  check "DPoP resource: ... a DPoP-bound token, after one nonce asked for" "^1 1$" \
    "$(das 'token_types.DPoP') $(das 'grant_errors.use_dpop_nonce')"
  sleep 2.5
  before=$(das grants.refresh_token) errors=$(das 'grant_errors.invalid_grant') revoked=$(das revoked_grants)
  check "DPoP resource: 8 callers on an expired token all answered" "^8$" "$(concurrent_calls 8 "$id" bound "READ COMMITTED")"
  check "DPoP resource: ... after one refresh, proved with the refresh token's key" "^1 0 0$" \
    "$(delta "$before" "$(das grants.refresh_token)") $(delta "$errors" "$(das 'grant_errors.invalid_grant')") $(delta "$revoked" "$(das revoked_grants)")"
  check "DPoP resource: ... its token bound too, and never a Bearer one" "^2 0$" "$(das 'token_types.DPoP') $(das 'token_types.Bearer // 0')"
  check "DPoP resource: every tool" "^$tool_names$" \
    "$(as_alice -c "SELECT string_agg(name, ',' ORDER BY name) FROM mcp_list_tools('$id')" 2>&1)"
  check "DPoP resource: whoami is alice, through the verified JWT" '"text": "alice via ' "$(call "$id" whoami '{}')"
  check "DPoP resource: the server saw the DPoP scheme only, once signed in" "^0$" "$(counter "${dpop_url%/mcp}" 'schemes.Bearer // 0')"
  token=$(curl -sf "${dpop_url%/mcp}/_test/stats" | jq -r '.last_token // empty')
  out=$("$node" "$peers/dpop-replay.mjs" "$dpop_url" "$token" 2>&1)
  check "DPoP resource: the token it accepted, replayed as Bearer, is refused" "bearer=40[01] " "$out"
  check "DPoP resource: ... as DPoP without a proof, refused" "no-proof=40[01] " "$out"
  check "DPoP resource: ... with a proof by another key, refused: the token is bound to the row's key" \
    "foreign-proof=401 invalid_token: JWT Access Token confirmation mismatch" "$out"
  refute "DPoP resource: nothing recorded as an error" "." "$(as_alice -c "SELECT last_error FROM user_mcp_servers WHERE id = '$id'")"

  # The same server on a clock two minutes behind the database's: it
  # refuses every proof (its iat is outside the window), not the token.
  id=$(as_alice -c "INSERT INTO user_mcp_servers (name, url, auth_type) VALUES ('DPoP, clock behind', '$dpop_behind_url', 'oauth') RETURNING id")
  check "DPoP resource, clock 2 min behind: sign-in" "^$id$" "$(peer_sign_in "$id")"
  before=$(das grants.refresh_token)
  out=$(as_alice -v VERBOSITY=verbose -c "SELECT mcp_call_tool('$id', 'echo', '{\"text\": \"x\"}')" 2>&1)
  check "DPoP resource, clock 2 min behind: the refused proof is MC005 with the server's reason" \
    "MC005: the MCP server refused the DPoP proof.*DETAIL: .*iat.* is outside the acceptable range" "$(tr -d '\n' <<<"$out")"
  check "DPoP resource, clock 2 min behind: ... no refresh spent, no new sign-in asked for" "^0 f$" \
    "$(delta "$before" "$(das grants.refresh_token)") $(as_alice -c "SELECT reauth_required FROM mcp_servers WHERE id = '$id'")"
}

# everything_server: the MCP reference server that exercises every feature
# (npm @modelcontextprotocol/server-everything, its Streamable HTTP
# transport, session-based, no auth): tools with images, progress and an
# outputSchema its zod writes as draft-07, resources and their templates,
# prompts with an embedded resource, and the questions a server asks
# mid-request (elicitation, roots, sampling), answered from SQL.
everything_server() {
  [[ "everything server" =~ ${PEERS_ONLY:-.} ]] || return 0
  local id out url=$everything_url
  id=$(as_alice -c "INSERT INTO user_mcp_servers (name, url, auth_type) VALUES ('Everything', '$url', 'headers') RETURNING id")
  ev() { as_alice -c "$1" 2>&1; }
  check "everything server: its tools, those for undeclared capabilities left out" "^echo,get-annotated-message,.*get-structured-content,get-sum,get-tiny-image,.*trigger-long-running-operation$" \
    "$(ev "SELECT string_agg(name, ',' ORDER BY name) FROM mcp_list_tools('$id')")"
  refute "everything server: ... (no elicitation tool without the capability)" "elicitation" "$(ev "SELECT string_agg(name, ',') FROM mcp_list_tools('$id')")"
  check "everything server: a call" '"text": "Echo: hi"' "$(ev "SELECT mcp_call_tool('$id', 'echo', '{\"message\": \"hi\"}')")"
  check "everything server: a draft-07 outputSchema, kept as it is" '"\$schema": "http://json-schema.org/draft-07/schema#"' \
    "$(ev "SELECT output_schema FROM mcp_list_tools('$id') WHERE name = 'get-structured-content'")"
  check "everything server: ... and a result checked against it" '"structuredContent": \{"humidity": [0-9]+, "conditions": "[A-Za-z ]+", "temperature": -?[0-9]+\}' \
    "$(ev "SELECT mcp_call_tool('$id', 'get-structured-content', '{\"location\": \"New York\"}')")"
  check "everything server: an image, passed through" "^image image/png [A-Za-z0-9+/]{100}" \
    "$(ev "SELECT c->>'type', c->>'mimeType', c->>'data' FROM jsonb_array_elements(mcp_call_tool('$id', 'get-tiny-image')->'content') c WHERE c->>'type' = 'image'" | tr '|' ' ')"
  check "everything server: a long-running operation, answered after its steps" "Long running operation completed. Duration: 1 seconds, Steps: 3" \
    "$(ev "SELECT mcp_call_tool('$id', 'trigger-long-running-operation', '{\"duration\": 1, \"steps\": 3}')")"
  check "everything server: resource links in a result" '"type": "resource_link".*"uri": "demo://resource/dynamic/text/2"' \
    "$(ev "SELECT mcp_call_tool('$id', 'get-resource-links', '{\"count\": 2}')")"
  check "everything server: every resource (its static documents)" "^7 demo://resource/static/document/architecture.md" \
    "$(ev "SELECT count(*) || ' ' || min(uri) FROM mcp_list_resources('$id')")"
  check "everything server: a document read" "## Tools" \
    "$(ev "SELECT mcp_read_resource('$id', 'demo://resource/static/document/features.md')->'contents'->0->>'text'")"
  check "everything server: its resource templates" "^demo://resource/dynamic/blob/\{resourceId\},demo://resource/dynamic/text/\{resourceId\}$" \
    "$(ev "SELECT string_agg(uri_template, ',' ORDER BY uri_template) FROM mcp_list_resource_templates('$id')")"
  check "everything server: a blob resource from a template" "^Resource 1: This is a base64 blob" \
    "$(ev "SELECT convert_from(decode(mcp_read_resource('$id', 'demo://resource/dynamic/blob/1')->'contents'->0->>'blob', 'base64'), 'UTF8')")"
  check "everything server: its prompts" "^args-prompt,completable-prompt,resource-prompt,simple-prompt$" \
    "$(ev "SELECT string_agg(name, ',' ORDER BY name) FROM mcp_list_prompts('$id')")"
  check "everything server: a prompt with arguments" "What's weather in Paris\?" "$(ev "SELECT mcp_get_prompt('$id', 'args-prompt', '{\"city\": \"Paris\"}')")"
  check "everything server: a prompt embedding a resource" '"type": "resource", "resource": \{"uri": "demo://resource/dynamic/text/2"' \
    "$(ev "SELECT mcp_get_prompt('$id', 'resource-prompt', '{\"resourceType\": \"Text\", \"resourceId\": \"2\"}')")"

  # Questions asked mid-request, for the capabilities the application
  # declares: returned to SQL, then answered by calling again.
  local form="SET mcp_oauth.client_capabilities = '{\"elicitation\": {\"form\": {}}}';"
  check "everything server: with elicitation declared, its elicitation tool is listed" "trigger-elicitation-request" \
    "$(ev "$form SELECT string_agg(name, ',') FROM mcp_list_tools('$id')")"
  check "everything server: its form comes back to SQL" '"resultType": "input_required", "inputRequests": \{"elicitation/create": .*"required": \["name"\]' \
    "$(ev "$form SELECT mcp_call_tool('$id', 'trigger-elicitation-request')")"
  out=$(ev "$form SELECT mcp_call_tool('$id', 'trigger-elicitation-request', '{}', '{\"elicitation/create\": {\"action\": \"accept\", \"content\": {\"name\": \"Alice Liddell\"}}}', NULL)")
  check "everything server: ... answered from SQL" "User provided the requested information.*Name: Alice Liddell" "$out"
  check "everything server: ... the fields left out filled with the form's defaults (SEP-1034)" 'Favorite Number: 3.14' "$out"
  check "everything server: ... or declined" "User declined" \
    "$(ev "$form SELECT mcp_call_tool('$id', 'trigger-elicitation-request', '{}', '{\"elicitation/create\": {\"action\": \"decline\"}}', NULL)")"
  check "everything server: the client's roots, given from SQL" "1. data.*URI: file:///srv/data" \
    "$(ev "SET mcp_oauth.client_capabilities = '{\"roots\": {}}'; SELECT mcp_call_tool('$id', 'get-roots-list', '{}', '{\"roots/list\": {\"roots\": [{\"uri\": \"file:///srv/data\", \"name\": \"data\"}]}}', NULL)")"
  check "everything server: an LLM completion, given from SQL" 'hi from SQL' \
    "$(ev "SET mcp_oauth.client_capabilities = '{\"sampling\": {}}'; SELECT mcp_call_tool('$id', 'trigger-sampling-request', '{\"prompt\": \"hello\"}', '{\"sampling/createMessage\": {\"role\": \"assistant\", \"content\": {\"type\": \"text\", \"text\": \"hi from SQL\"}, \"model\": \"sql\"}}', NULL)")"

  # A tool it requires to run as a task (2025-11-25 tasks,
  # execution.taskSupport "required"): called as one, its result fetched
  # with tasks/result; its question mid-task comes back to SQL.
  check "everything server: a tool that must run as a task, called as one" \
    '"io.modelcontextprotocol/related-task": \{"taskId": "[^"]+"\}.*# Research Report: postgres' \
    "$(ev "SELECT mcp_call_tool('$id', 'simulate-research-query', '{\"topic\": \"postgres\"}')")"
  check "everything server: ... its question mid-task comes back to SQL" '"resultType": "input_required".*could have multiple interpretations' \
    "$(ev "$form SELECT mcp_call_tool('$id', 'simulate-research-query', '{\"topic\": \"python\", \"ambiguous\": true}')")"
  check "everything server: ... and is answered from SQL" 'Clarification\*\*: programming' \
    "$(ev "$form SELECT mcp_call_tool('$id', 'simulate-research-query', '{\"topic\": \"python\", \"ambiguous\": true}', '{\"elicitation/create\": {\"action\": \"accept\", \"content\": {\"interpretation\": \"programming\"}}}', NULL)")"
  local pids=() i
  for i in 1 2; do
    as_alice -c "BEGIN ISOLATION LEVEL REPEATABLE READ" -c "SELECT mcp_call_tool('$id', 'simulate-research-query', '{\"topic\": \"topic $i\"}')" -c "COMMIT" \
      >"$dir/research.$i" 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}"
  check "everything server: ... two backends at once, in REPEATABLE READ, each its own task" "^2$" "$(cat "$dir"/research.* | grep -c '# Research Report: topic [12]')"
  out=$(as_alice -v ON_ERROR_STOP=0 -c "SET statement_timeout = '1s'" -c "SELECT mcp_call_tool('$id', 'simulate-research-query', '{\"topic\": \"too slow\"}')" \
    -c "RESET statement_timeout" -c "SELECT mcp_call_tool('$id', 'echo', '{\"message\": \"still here\"}')" 2>&1)
  check "everything server: ... a statement_timeout ends the wait for the task (57014)" "canceling statement due to statement timeout" "$out"
  check "everything server: ... and the backend's next call works" '"text": "Echo: still here"' "$out"
  out=$(ev "SELECT mcp_call_tool_async('$id', 'simulate-research-query', '{\"topic\": \"queued\"}')")
  check "everything server: ... and queued, by the queue worker" '# Research Report: queued' "$(ev "SELECT mcp_call_result($out, '60s')")"
  refute "everything server: nothing recorded as an error" "." "$(ev "SELECT last_error FROM user_mcp_servers WHERE id = '$id'")"
}

# scenario LABEL MCP_URL FEATURES: the row's whole life against one server.
# FEATURES: any of sessions (the server keeps sessions, and is restarted to
# forget them: $restart), bound (it counts requests that carry a session
# made with other credentials), stepup, isolation, lifecycle.
scenario() {
  label=$1
  [[ $label =~ ${PEERS_ONLY:-.} ]] || return 0
  local url=$2 features=$3 id out before
  id=$(as_alice -c "INSERT INTO user_mcp_servers (name, url, auth_type) VALUES ('$label', '$url', 'oauth') RETURNING id")
  out=$(peer_sign_in "$id")
  check "$label: sign-in at the provider's own forms" "^$id$" "$out"
  check "$label: ... stored" "^t$" "$(as_alice -c "SELECT oauth_authorized FROM mcp_servers WHERE id = '$id'")"
  check "$label: every tool, from every page" "^$tool_names$" \
    "$(as_alice -c "SELECT string_agg(name, ',' ORDER BY name) FROM mcp_list_tools('$id')" 2>&1)"
  check "$label: a call" '"text": "hi"' "$(call "$id")"
  check "$label: its structured result" '"structuredContent": \{"(sum|result)": 5\}' "$(call "$id" add '{"a": 2, "b": 3}')"
  if [ "$peer_mode" = direct ]; then
    out=$(as_alice -c "SELECT string_agg(e->>'ok' || ':' || (e->'result'->'content'->0->>'text'), ',')
                         FROM jsonb_array_elements(mcp_call_tools(jsonb_build_array(
                           jsonb_build_object('server_id', '$id', 'name', 'echo', 'arguments', '{\"text\": \"parallel\"}'::jsonb),
                           jsonb_build_object('server_id', '$id', 'name', 'add', 'arguments', '{\"a\": 2, \"b\": 3}'::jsonb)))) e" 2>&1)
    check "$label: parallel calls in one statement (mcp_call_tools)" "^true:[^,]*parallel[^,]*,true:[^,]*5" "$out"
    out=$(as_alice -c "SELECT mcp_call_tool_async('$id', 'echo', '{\"text\": \"queued\"}')" 2>&1)
    check "$label: a queued call (mcp_call_tool_async), made by the queue worker" '"text": "[^"]*queued' \
      "$(as_alice -c "SELECT mcp_call_result($out, '20s')" 2>&1)"
  fi

  # Refresh after a 401 (the access token revoked at the AS, the refresh
  # token still good), then after expiry.
  before=$(oidc_stat 'grants.refresh_token')
  ttl 2
  curl -sf -X POST "$issuer/_test/revoke-access" >/dev/null
  check "$label: a call refused with 401 refreshes and succeeds" '"text": "hi"' "$(call "$id")"
  ttl 300
  sleep 2.5
  check "$label: a call on an expired token refreshes first" '"text": "hi"' "$(call "$id")"
  check "$label: ... two refreshes in all" "^2$" "$(delta "$before" "$(oidc_stat 'grants.refresh_token')")"
  if [[ $features == *bound* ]]; then
    check "$label: new credentials, new session: no request carried a session made with other ones" "^0$" \
      "$(counter "$server" session_credential_mismatches)"
  fi

  if [[ $features == *sessions* ]]; then
    # The server restarts and forgets its sessions.
    $restart
    before=$(counter "$server" "$session_misses")
    out=$(for i in 1 2 3; do call "$id" echo "{\"text\": \"after restart $i\"}"; done)
    check "$label: after the server forgot its sessions, calls from new backends succeed" \
      '"text": "after restart 1".*"text": "after restart 2".*"text": "after restart 3"' "$(tr -d '\n' <<<"$out")"
    check "$label: ... the dead session was sent once, by one backend only" "^1$" \
      "$(delta "$before" "$(counter "$server" "$session_misses")")"
    check "$label: ... the row shares the new session" '"session_id": "[^"]+"' "$(learned "$id" '"session_id"')"
    refute "$label: ... nothing recorded as an error" "." "$(as_alice -c "SELECT last_error FROM user_mcp_servers WHERE id = '$id'")"
  fi

  if [[ $features == *isolation* ]]; then
    for level in "READ COMMITTED" "REPEATABLE READ" "SERIALIZABLE"; do herd "$id" "$level"; done
  fi

  if [[ $features == *stepup* ]]; then
    out=$(as_alice -v VERBOSITY=verbose -c "SELECT mcp_call_tool('$id', 'admin_action')" 2>&1)
    check "$label: a tool needing more scope asks for a new sign-in (403 insufficient_scope)" "ERROR:  MC001" "$out"
    check "$label: ... the next sign-in asks for it" "scope=[^&]*mcp%3Aadmin" "$(as_alice -c "SELECT mcp_oauth_start('$id')")"
    check "$label: ... and after it the tool works" '"text": "admin done"' "$(peer_sign_in "$id" >/dev/null; call "$id" admin_action '{}')"
  fi

  if [[ $features == *lifecycle* ]]; then
    # The grant is revoked at the authorization server.
    listen_for mcp_oauth_reauth 3 "$dir/reauth.out"
    sleep 0.5
    curl -sf -X POST "$issuer/_test/revoke-all" >/dev/null
    out=$(as_alice -v VERBOSITY=verbose -c "SELECT mcp_call_tool('$id', 'echo', '{\"text\": \"x\"}')" 2>&1)
    wait "$listener"
    check "$label: a grant revoked at the AS needs a new sign-in" "ERROR:  MC001" "$out"
    check "$label: ... the row says so" "^t$" "$(as_alice -c "SELECT reauth_required FROM user_mcp_servers WHERE id = '$id'")"
    check "$label: ... and listeners are told" "\"server_id\" : \"$id\"" "$(cat "$dir/reauth.out")"
    check "$label: a new sign-in" "^$id$" "$(peer_sign_in "$id")"
    check "$label: ... and calls work again" '"text": "hi"' "$(call "$id")"
    before=$(oidc_stat revocations)
    as_alice -c "SELECT mcp_oauth_disconnect('$id')" >/dev/null
    check "$label: disconnect revokes the grant at the AS" "^1$" "$(delta "$before" "$(oidc_stat revocations)")"
    check "$label: ... and the row needs a sign-in" "ERROR:  MC001" \
      "$(as_alice -v VERBOSITY=verbose -c "SELECT mcp_call_tool('$id', 'echo', '{\"text\": \"x\"}')" 2>&1)"
  fi
}

# The servers, each on a port of its own (a restarted server comes back on it).
ts_port=$(free_port) ts400_port=$(free_port) tsless_port=$(free_port) py_port=$(free_port)
start_ts() { start_peer "ts$1" "$node" ts-server.mjs "$2" "$issuer" "$3" "$4"; }
ts_url=$(start_ts "" "$ts_port" stateful 404)
ts400_url=$(start_ts 400 "$ts400_port" stateful 400)
tsless_url=$(start_ts less "$tsless_port" stateless 404)
py_url=$(start_peer py "$python" py_server.py "$py_port" "$issuer")
# DPoP: a provider of JWT access tokens that demands nonces, and a server
# that takes DPoP-bound tokens only.
dpop_issuer=$(start_peer oidcdpop "$node" oidc.mjs 0 300 jwt-dpop-nonce)
dpop_url=$(start_peer tsdpop "$node" ts-server.mjs "$(free_port)" "$dpop_issuer" stateful 404 dpop)
dpop_behind_url=$(start_peer tsbehind env CLOCK_SKEW_SECONDS=-120 "$node" --import ./clock.mjs ts-server.mjs "$(free_port)" "$dpop_issuer" stateful 404 dpop)
for u in "$ts_url" "$ts400_url" "$tsless_url" "$py_url" "$dpop_issuer" "$dpop_url" "$dpop_behind_url"; do
  [ -n "$u" ] || { echo "a server did not start:"; tail -5 "$dir"/*.err; exit 1; }
done
# The reference server takes its port from PORT and prints no URL.
everything_port=$(free_port) everything_url=
start_peer everything env PORT="$everything_port" "$node" node_modules/@modelcontextprotocol/server-everything/dist/index.js streamableHttp >/dev/null
for _ in $(seq 100); do
  curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$everything_port/mcp" && { everything_url=http://127.0.0.1:$everything_port/mcp; break; }
  sleep 0.1
done
[ -n "$everything_url" ] || { echo "the reference server did not start:"; tail -5 "$dir/everything.err"; exit 1; }
# up URL: waits (at most 10 s) until the server at URL (its /mcp) answers:
# a server prints its URL before it listens.
up() { for _ in $(seq 100); do curl -sf --max-time 1 "${1%/mcp}/_test/stats" >/dev/null && return 0; sleep 0.1; done; }
restart_ts() { stop_peer ts; up "$(start_ts "" "$ts_port" stateful 404)"; }
restart_ts400() { stop_peer ts400; up "$(start_ts 400 "$ts400_port" stateful 400)"; }
restart_py() { stop_peer py; up "$(start_peer py "$python" py_server.py "$py_port" "$issuer")"; }

direct_host=$PGHOST
run_mode() {
  case $1 in
    direct) ;;
    pgbouncer)
      mkdir -p "$dir/bouncer"
      chown postgres: "$dir/bouncer" 2>/dev/null || true
      cat >"$dir/bouncer/pgbouncer.ini" <<INI
[databases]
postgres = host=$direct_host port=5432 dbname=postgres
[pgbouncer]
listen_addr =
unix_socket_dir = $dir/bouncer
listen_port = 6432
auth_type = trust
auth_file = $dir/bouncer/users.txt
pool_mode = transaction
default_pool_size = 4
max_client_conn = 100
logfile = $dir/bouncer/pgbouncer.log
pidfile = $dir/bouncer/pgbouncer.pid
INI
      printf '"alice" ""\n"postgres" ""\n' >"$dir/bouncer/users.txt"
      chown -R postgres: "$dir/bouncer" 2>/dev/null || true
      as_pg pgbouncer -d "$dir/bouncer/pgbouncer.ini" || { echo "pgbouncer did not start"; return 1; }
      for _ in $(seq 50); do [ -S "$dir/bouncer/.s.PGSQL.6432" ] && break; sleep 0.1; done
      cp "$dir/bouncer/pgbouncer.pid" "$dir/pgbouncer.pid" # stopped at exit with the servers
      export PGHOST=$dir/bouncer PGPORT=6432
      ;;
    no-worker-slots)
      # The durable writers registered at start (mcp_oauth.durable_workers,
      # 2), the queue worker and the logical replication launcher want more
      # slots than there are: none is left for a dynamic worker.
      psql_q -h "$direct_host" -p 5432 -c "ALTER SYSTEM SET max_worker_processes = 3" >/dev/null
      restart_cluster
      check "no dynamic worker can start (a parallel query gets none)" "Workers Planned: 1.*Workers Launched: 0" \
        "$(psql_q -c "SET force_parallel_mode = on" -c "EXPLAIN (ANALYZE, COSTS OFF) SELECT 1" 2>&1 | tr -d '\n')"
      check "... while the durable writers run" "^2$" "$(pgrep -P "$(head -1 "$dir/data/postmaster.pid")" -fc "postgres: mcp_oauth durable writer [0-9]")"
      ;;
  esac
  say "$1"
  peer_mode=$1
  tool_names=add,admin_action,echo,slow,whoami
  server=${ts_url%/mcp} session_misses=unknown_session_requests restart=restart_ts
  scenario "TS SDK stateful ($1)" "$ts_url" "sessions bound stepup isolation lifecycle"
  server=${ts400_url%/mcp} restart=restart_ts400
  scenario "TS SDK stateful, 400 for an unknown session ($1)" "$ts400_url" "sessions bound"
  scenario "TS SDK stateless ($1)" "$tsless_url" ""
  tool_names=add,echo,whoami
  server=${py_url%/mcp} session_misses='session_misses' restart=restart_py
  scenario "Python SDK FastMCP ($1)" "$py_url" "sessions isolation lifecycle"
  [ "$1" = direct ] && { rmcp_tasks; service_client; dpop_resource; everything_server; }
  case $1 in
    pgbouncer)
      kill "$(cat "$dir/pgbouncer.pid")" && rm -f "$dir/pgbouncer.pid"
      export PGHOST=$direct_host PGPORT=5432
      ;;
    no-worker-slots)
      psql_q -c "ALTER SYSTEM RESET max_worker_processes" >/dev/null
      restart_cluster
      ;;
  esac
}

for mode in "${modes[@]}"; do run_mode "$mode"; done
if [ "$failed" -gt 0 ]; then
  echo "what the authorization servers counted:"
  curl -s "$issuer/_test/stats" | jq -c .
  curl -s "$dpop_issuer/_test/stats" | jq -c .
  echo "server logs:"
  tail -n 5 "$dir"/*.err
fi
finish_checks peers
