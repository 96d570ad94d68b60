#!/usr/bin/env bash
# The MCP conformance suite's client: it is run as `client.sh <server-url>`
# with MCP_CONFORMANCE_SCENARIO and MCP_CONFORMANCE_CONTEXT set, and drives
# mcp_oauth through SQL only (PGHOST etc. point at the cluster run.sh made):
# insert a row, mcp_oauth_set_client when the context has credentials,
# mcp_oauth_start, fetch the authorize URL without following the redirect,
# mcp_oauth_callback with the Location, then list and call tools, signing
# in again when the server asks for more scope.
set -uo pipefail
server_url="${!#}"
log() { printf '[client] %s\n' "$*" >&2; }

sql() {  # prints the value; on error prints the SQLSTATE to stderr and fails
  local out
  if out=$(psql -X -At -q -v ON_ERROR_STOP=1 -v VERBOSITY=default -c "$1" 2>"$tmp/err"); then
    printf '%s' "$out"
  else
    sed -n 's/^ERROR:  //p; s/^DETAIL:  /  detail: /p' "$tmp/err" >&2
    return 1
  fi
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"

lit() { printf "'%s'" "${1//\'/\'\'}"; }

id=$(sql "INSERT INTO user_mcp_servers (name, url, auth_type) VALUES ('conformance', $(lit "$server_url"), 'oauth') RETURNING id") || exit 1
log "server row $id for $server_url (${MCP_CONFORMANCE_SCENARIO:-?})"

context="${MCP_CONFORMANCE_CONTEXT:-}"
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
