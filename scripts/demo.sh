#!/usr/bin/env bash
# The main job, on a throwaway cluster: build and install the extension,
# start the loopback fixture (an OAuth authorization server + MCP server),
# connect a server as one application role, sign in (curl plays the
# browser), call a tool, and show that another role sees none of it and
# no one reads a token. Errors it demonstrates are shown with their
# SQLSTATE; it exits 0 when every step behaved as shown, else names the
# step that did not.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../tests/lib.sh"
cd "$ROOT_DIR"

bash scripts/setup.sh
say "building and installing mcp_oauth into PostgreSQL ${PG_MAJOR}, and the fixture server"
install_extension >/dev/null
cargo build -q -p mcp_oauth_fixture

fixture_cluster
fixture=$base
say "a throwaway cluster in $dir; the fixture (authorization server + MCP server) at $fixture"

# demo EXPECTED... -- PSQL_ARGS: runs SQL as a user would see it (errors
# with their SQLSTATE), and checks its output has each EXPECTED pattern.
demo() {
  local expected=() out
  while [ "$1" != "--" ]; do expected+=("$1"); shift; done
  shift
  out=$("$PG_BIN/psql" -X -v ON_ERROR_STOP=0 -v VERBOSITY=verbose -e "$@" 2>&1) || true
  grep -v "^LOCATION:" <<<"$out"
  for pattern in "${expected[@]}"; do
    grep -qE -- "$pattern" <<<"$out" || { failed=$((failed + 1)); echo "  !! expected to see: $pattern"; }
  done
}

say "as the administrator: settings (a random state secret, not shown), the extension, two roles"
psql_q -c "ALTER SYSTEM SET mcp_oauth.state_secret = '$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')'"
demo "CREATE EXTENSION" "GRANT ROLE" -- <<SQL
ALTER SYSTEM SET mcp_oauth.redirect_uri = 'http://127.0.0.1:3000/oauth/callback';
ALTER SYSTEM SET mcp_oauth.allow_http_loopback = on;  -- the fixture is plain http on loopback
SELECT pg_reload_conf();
CREATE EXTENSION mcp_oauth;
CREATE ROLE alice LOGIN;
CREATE ROLE bob LOGIN;
GRANT mcp_oauth_user TO alice, bob;
SQL

say "as alice: connect the fixture's MCP server with OAuth, and start the sign-in"
id=$("$PG_BIN/psql" -X -q -At -U alice -c "INSERT INTO user_mcp_servers (name, url, auth_type) VALUES ('Fixture', '$fixture/mcp', 'oauth') RETURNING id")
echo "server id: $id"
authorize_url=$("$PG_BIN/psql" -X -q -At -U alice -c "SELECT mcp_oauth_start('$id')")
echo "authorize URL (the application opens it in a popup):"
echo "  $authorize_url"

say "the browser: the authorization server approves and redirects to the application"
callback=$(browser_approve "$authorize_url")
echo "  $callback"

say "the application's callback handler finishes the sign-in"
demo "^ $id$" "fixture \| oauth +\| t +\| f" "add +\| Adds two numbers" '"text": "42"' "ERROR:  42501: permission denied" -- -U alice <<SQL
SELECT mcp_oauth_callback('$callback') AS signed_in_server;
SELECT slug, auth_type, oauth_authorized, reauth_required, last_error FROM mcp_servers;
SELECT name, description FROM mcp_list_tools('$id');
SELECT mcp_call_tool('$id', 'add', '{"a": 2, "b": 40}');
SELECT oauth_tokens FROM user_mcp_servers;  -- the token is a secret, even to its owner
SQL

say "as bob: alice's server is invisible and untouchable"
demo "^ +0$" "ERROR:  42704: MCP server $id not found" "^UPDATE 0$" "ERROR:  42501: new row violates row-level security" -- -U bob <<SQL
SELECT count(*) AS servers_bob_sees FROM mcp_servers;
SELECT mcp_call_tool('$id', 'add', '{"a": 1, "b": 1}');
UPDATE user_mcp_servers SET url = 'https://evil.example/mcp';
INSERT INTO user_mcp_servers (user_id, name, url) VALUES ('alice', 'planted', 'https://evil.example/mcp');
SQL

say "a replayed callback is refused"
demo "ERROR:  MC002: invalid OAuth callback" -- -U alice -c "SELECT mcp_oauth_callback('$callback')"

say "done"
if [ "$failed" -ne 0 ]; then
  echo "$failed step(s) did not behave as shown above"
  exit 1
fi
echo "every step behaved as shown"

