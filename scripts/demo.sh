#!/usr/bin/env bash
# The main job, on a throwaway cluster: build and install the extension,
# start the loopback fixture (an OAuth authorization server + MCP server),
# connect a server as one application role, sign in (curl plays the
# browser), call a tool, and show that another role sees none of it and
# no one reads a token.
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

demo() { "$PG_BIN/psql" -X -v ON_ERROR_STOP=0 -e "$@"; }

say "as the administrator: settings (a random state secret, not shown), the extension, two roles"
psql_q -c "ALTER SYSTEM SET mcp_oauth.state_secret = '$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')'"
demo <<SQL
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
demo -U alice <<SQL
SELECT mcp_oauth_callback('$callback') AS signed_in_server;
SELECT slug, auth_type, oauth_authorized, reauth_required, last_error FROM mcp_servers;
SELECT name, description FROM mcp_list_tools('$id');
SELECT mcp_call_tool('$id', 'add', '{"a": 2, "b": 40}');
SELECT oauth_tokens FROM user_mcp_servers;  -- the token is a secret, even to its owner
SQL

say "as bob: alice's server is invisible and untouchable"
demo -U bob <<SQL
SELECT count(*) AS servers_bob_sees FROM mcp_servers;
SELECT mcp_call_tool('$id', 'add', '{"a": 1, "b": 1}');
UPDATE user_mcp_servers SET url = 'https://evil.example/mcp';
INSERT INTO user_mcp_servers (user_id, name, url) VALUES ('alice', 'planted', 'https://evil.example/mcp');
SQL

say "a replayed callback is refused"
demo -U alice -c "SELECT mcp_oauth_callback('$callback')"
