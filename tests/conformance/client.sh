#!/usr/bin/env bash
# The MCP conformance suite's client: run as `client.sh <server-url>` with
# MCP_CONFORMANCE_SCENARIO (and MCP_CONFORMANCE_CONTEXT) set. It drives
# mcp_oauth through SQL only, each statement in a new session (as an
# application behind a pooler would); PGHOST etc. point at run.sh's cluster.
#
# auth/* scenarios: an OAuth row, mcp_oauth_set_client when the context has
# credentials, mcp_oauth_start, the authorize URL fetched without following
# the redirect, mcp_oauth_callback with the Location, then tools listed and
# called, signing in again when the server asks for more scope.
# Unattended scenarios (client credentials, workload identity): a row of
# that auth_type, its client (secret or private key) or the workload token
# file, then tools listed and called with no sign-in.
# Other scenarios: a headers-mode row and what the scenario asks for (the
# context's toolCalls, or the tools it lists), answering input-required
# results from SQL.
#
# When MCP_OAUTH_RUNNER_LOG is set, one line per run is appended to it:
# "<scenario> exit=<status> sqlstate=<last SQLSTATE or ->", which run.sh
# checks (the suite itself ignores the client's exit status).
set -uo pipefail
server_url="${!#}"
scenario="${MCP_CONFORMANCE_SCENARIO:-}"
context="${MCP_CONFORMANCE_CONTEXT:-}"
log() { printf '[client] %s\n' "$*" >&2; }

tmp=$(mktemp -d)
finish() {
  local status=$? sqlstate
  sqlstate=$(cat "$tmp/sqlstate" 2>/dev/null || echo -)
  [ -n "${MCP_OAUTH_RUNNER_LOG:-}" ] && echo "$scenario exit=$status sqlstate=$sqlstate" >>"$MCP_OAUTH_RUNNER_LOG"
  rm -rf "$tmp" ${token_file:+"$token_file"}
}
trap finish EXIT
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"

sql() {  # prints the value; on error logs the SQLSTATE and message and fails
  local out
  if out=$(psql -X -At -q -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -c "$1" 2>"$tmp/err"); then
    printf '%s\n' "$out"
  else
    # The last SQLSTATE, kept in a file: sql runs in a subshell.
    sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\): .*/\1/p' "$tmp/err" | head -1 >"$tmp/sqlstate"
    [ -s "$tmp/sqlstate" ] || echo unknown >"$tmp/sqlstate"
    sed -n 's/^ERROR:  //p; s/^DETAIL:  /  detail: /p' "$tmp/err" >&2
    return 1
  fi
}
lit() { printf "'%s'" "${1//\'/\'\'}"; }

# call_answering ID NAME ARGS_JSON: calls a tool and answers input-required
# results (at most 5 rounds): a form is accepted with the schema's defaults
# (elicitation/create, also a session-based server's question, keyed by its
# method), roots are none, sampling gets a fixed text.
call_answering() {
  local id=$1 name=$2 args=$3 result responses state
  result=$(sql "SELECT mcp_call_tool('$id', $(lit "$name"), $(lit "$args"))") || return 1
  for round in 1 2 3 4 5; do
    [ "$(jq -r '.resultType // "complete"' <<<"$result")" = input_required ] || { log "$name: $result"; return 0; }
    responses=$(jq -c '.inputRequests | with_entries(.value |=
      if .method == "elicitation/create" then {action: "accept", content: {}}
      elif .method == "roots/list" then {roots: []}
      else {role: "assistant", content: {type: "text", text: "declined"}, model: "none"} end)' <<<"$result")
    state=$(jq -r '.requestState // empty' <<<"$result")
    log "$name: input required (round $round), answering $responses"
    if [ -n "$state" ]; then
      result=$(sql "SELECT mcp_call_tool('$id', $(lit "$name"), $(lit "$args"), $(lit "$responses"), $(lit "$state"))") || return 1
    else
      result=$(sql "SELECT mcp_call_tool('$id', $(lit "$name"), $(lit "$args"), $(lit "$responses"))") || return 1
    fi
  done
  log "$name: still input-required after 5 rounds"
  return 1
}

oauth_scenario() {
  local id client_id client_secret secret_arg authorize_url location tool result
  id=$(sql "INSERT INTO user_mcp_servers (name, url, auth_type) VALUES ('conformance', $(lit "$server_url"), 'oauth') RETURNING id") || exit 1
  log "server row $id for $server_url ($scenario)"
  if [ -n "$context" ]; then
    client_id=$(jq -r '.client_id // empty' <<<"$context")
    client_secret=$(jq -r '.client_secret // empty' <<<"$context")
    if [ -n "$client_id" ]; then
      secret_arg=NULL
      [ -n "$client_secret" ] && secret_arg=$(lit "$client_secret")
      sql "SELECT mcp_oauth_set_client('$id', $(lit "$client_id"), $secret_arg)" >/dev/null || exit 1
      log "pre-registered client set"
    fi
  fi
  for attempt in 1 2 3 4 5; do
    authorize_url=$(sql "SELECT mcp_oauth_start('$id')") || { log "start refused; stopping"; exit 1; }
    location=$(curl -s -o /dev/null --max-time 10 -w '%{redirect_url}' "$authorize_url")
    [ -n "$location" ] || { log "the authorization endpoint did not redirect"; exit 1; }
    sql "SELECT mcp_oauth_callback($(lit "$location"))" >/dev/null || exit 1
    log "signed in (attempt $attempt)"
    if tool=$(sql "SELECT name FROM mcp_list_tools('$id') ORDER BY name LIMIT 1") &&
       result=$(sql "SELECT mcp_call_tool('$id', $(lit "$tool"), '{}')"); then
      log "called $tool: $result"
      exit 0
    fi
    if grep -q 'sign-in required' "$tmp/err"; then
      log "the server asks for a new sign-in"
      continue
    fi
    exit 1
  done
  log "giving up after 5 sign-ins"
  exit 1
}

# unattended_scenario AUTH_TYPE: a client_credentials or workload_identity
# row, set up from the context, whose tools are listed and called with no
# sign-in.
unattended_scenario() {
  local id client_id secret key alg tool result
  id=$(sql "INSERT INTO user_mcp_servers (name, url, auth_type) VALUES ('conformance', $(lit "$server_url"), '$1') RETURNING id") || exit 1
  log "$1 row $id for $server_url ($scenario)"
  client_id=$(jq -r '.client_id // empty' <<<"$context")
  secret=$(jq -r '.client_secret // empty' <<<"$context")
  key=$(jq -r '.private_key_pem // empty' <<<"$context")
  alg=$(jq -r '.signing_algorithm // "ES256"' <<<"$context")
  if [ -n "$key" ]; then
    sql "SELECT mcp_oauth_set_client_key('$id', $(lit "$client_id"), $(lit "$key"), $(lit "$alg"))" >/dev/null || exit 1
  elif [ -n "$client_id" ]; then
    sql "SELECT mcp_oauth_set_client('$id', $(lit "$client_id"), $([ -n "$secret" ] && lit "$secret" || echo NULL))" >/dev/null || exit 1
  fi
  if [ "$1" = workload_identity ]; then
    # The platform's mounted token: a file only the server's user reads,
    # named by a superuser (mcp_oauth.workload_token_file is superuser-only).
    token_file=$(mktemp "${TMPDIR:-/tmp}/mcp_oauth_workload.XXXXXX")
    jq -r '.valid_jwt' <<<"$context" >"$token_file"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$token_file"
    chmod 600 "$token_file"
    PGUSER=postgres psql -X -q -v ON_ERROR_STOP=1 \
      -c "ALTER ROLE \"$PGUSER\" SET mcp_oauth.workload_token_file = $(lit "$token_file")" >/dev/null || exit 1
  fi
  tool=$(sql "SELECT name FROM mcp_list_tools('$id') ORDER BY name LIMIT 1") || exit 1
  result=$(sql "SELECT mcp_call_tool('$id', $(lit "$tool"), '{}')") || exit 1
  log "called $tool: $result"
  exit 0
}

# enterprise_scenario: an OAuth row with the client its authorization server
# issued, the identity provider named by a superuser, and a sign-in with the
# user's ID token (no browser); then tools listed and called.
enterprise_scenario() {
  local id tool result
  id=$(sql "INSERT INTO user_mcp_servers (name, url, auth_type) VALUES ('conformance', $(lit "$server_url"), 'oauth') RETURNING id") || exit 1
  log "oauth row $id for $server_url ($scenario)"
  sql "SELECT mcp_oauth_set_client('$id', $(lit "$(jq -r .client_id <<<"$context")"), $(lit "$(jq -r .client_secret <<<"$context")"))" >/dev/null || exit 1
  PGUSER=postgres psql -X -q -v ON_ERROR_STOP=1 \
    -c "ALTER ROLE \"$PGUSER\" SET mcp_oauth.idp_token_endpoint = $(lit "$(jq -r .idp_token_endpoint <<<"$context")")" \
    -c "ALTER ROLE \"$PGUSER\" SET mcp_oauth.idp_client_id = $(lit "$(jq -r .idp_client_id <<<"$context")")" >/dev/null || exit 1
  sql "SELECT mcp_oauth_enterprise_sign_in('$id', $(lit "$(jq -r .idp_id_token <<<"$context")"))" >/dev/null || exit 1
  log "signed in with the ID token"
  tool=$(sql "SELECT name FROM mcp_list_tools('$id') ORDER BY name LIMIT 1") || exit 1
  result=$(sql "SELECT mcp_call_tool('$id', $(lit "$tool"), '{}')") || exit 1
  log "called $tool: $result"
  exit 0
}

mcp_scenario() {
  local id calls schema tool uri
  id=$(sql "INSERT INTO user_mcp_servers (name, url, headers) VALUES ('conformance', $(lit "$server_url"), '{}') RETURNING id") || exit 1
  log "server row $id for $server_url ($scenario)"
  case "$scenario" in
    sep-2640-*)
      # Skills: listed; then (but for no-prefetch, where nothing is loaded)
      # the first skill loaded: its SKILL.md read and verified, then its
      # other files, each verified. A tampered file is refused (MC005) and
      # nothing after it is read.
      uri=$(sql "SELECT uri FROM mcp_list_skills('$id') ORDER BY uri LIMIT 1") || exit 1
      [ -n "$uri" ] || { log "no skills listed"; exit 1; }
      if [ "$scenario" = sep-2640-client-no-prefetch ]; then log "listed $uri; nothing loaded"; exit 0; fi
      sql "SELECT mcp_read_skill('$id', $(lit "$uri"))->>'digest'" >/dev/null || exit 1
      log "loaded $uri"
      sql "SELECT f->>'uri' FROM mcp_list_skills('$id') s, jsonb_array_elements(s.files) f WHERE s.uri = $(lit "$uri") AND f->>'uri' <> s.uri" >"$tmp/files" || exit 1
      while IFS= read -r file; do
        [ -n "$file" ] || continue
        sql "SELECT mcp_read_skill('$id', $(lit "$file"))->>'digest'" >/dev/null || exit 1
        log "read $file"
      done <"$tmp/files" ;;
    json-schema-ref-no-deref|request-metadata)
      sql "SELECT count(*) FROM mcp_list_tools('$id')" >/dev/null || exit 1 ;;
    json-schema-2020-12-preservation)
      schema=$(sql "SELECT input_schema FROM mcp_list_tools('$id') WHERE name = 'json_schema_2020_12_tool'") || exit 1
      [ -n "$schema" ] || { log "the focal tool is not listed"; exit 1; }
      call_answering "$id" json_schema_echo "$(jq -c '{schema: .}' <<<"$schema")" || exit 1 ;;
    elicitation-sep1034-client-defaults)
      # Declares elicitation; the server asks mid-call and gets the
      # application's answer, with the form's defaults filled in.
      export PGOPTIONS="$PGOPTIONS -c mcp_oauth.client_capabilities={\"elicitation\":{\"form\":{}}}"
      tool=$(sql "SELECT name FROM mcp_list_tools('$id') ORDER BY name LIMIT 1") || exit 1
      sql "SELECT mcp_call_tool('$id', $(lit "$tool"), '{}', '{\"elicitation/create\": {\"action\": \"accept\", \"content\": {}}}')" >&2 || exit 1 ;;
    *)
      calls=$(jq -c '.toolCalls // empty | .[]' <<<"${context:-{\}}" 2>/dev/null)
      if [ -n "$calls" ]; then
        while IFS= read -r call; do
          call_answering "$id" "$(jq -r .name <<<"$call")" "$(jq -c '.arguments // {}' <<<"$call")" || exit 1
        done <<<"$calls"
      else
        sql "SELECT name FROM mcp_list_tools('$id')" >"$tmp/tools" || exit 1
        [ -n "$(head -1 "$tmp/tools")" ] || { log "no tools listed"; exit 0; }
        if [ "$scenario" = sep-2322-client-request-state ]; then
          while IFS= read -r tool; do call_answering "$id" "$tool" '{}' || exit 1; done <"$tmp/tools"
        else
          call_answering "$id" "$(head -1 "$tmp/tools")" '{"a": 2, "b": 3}' || exit 1
        fi
      fi ;;
  esac
  exit 0
}

case "$scenario" in
  auth/client-credentials-*) unattended_scenario client_credentials ;;
  auth/wif-*) unattended_scenario workload_identity ;;
  auth/enterprise-managed-authorization) enterprise_scenario ;;
  auth/*) oauth_scenario ;;
  *) mcp_scenario ;;
esac
