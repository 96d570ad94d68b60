#!/usr/bin/env bash
# The main job, on a throwaway cluster: build and install the extension,
# create it, connect a server as one application role, and show that
# another role cannot see it, nor anyone read its secrets.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT_DIR"

bash scripts/setup.sh
say "building and installing mcp_oauth into PostgreSQL ${PG_MAJOR}"
install_extension >/dev/null

dir=$(scratch_dir)
trap 'stop_cluster "$dir"; rm -rf "$dir"' EXIT
say "starting a throwaway cluster in $dir"
start_cluster "$dir"

demo() { "$PG_BIN/psql" -X -v ON_ERROR_STOP=0 -e "$@"; }

say "as the administrator: create the extension and two application roles"
demo <<'SQL'
CREATE EXTENSION mcp_oauth;
CREATE ROLE alice LOGIN;
CREATE ROLE bob LOGIN;
GRANT mcp_oauth_user TO alice, bob;
SQL

say "as alice: connect two MCP servers"
demo -U alice <<'SQL'
INSERT INTO user_mcp_servers (name, url, headers)
VALUES ('GitHub', 'https://mcp.github.example/mcp', '{"Authorization": "Bearer ghp_demo_secret"}');
INSERT INTO user_mcp_servers (name, url, auth_type)
VALUES ('Linear', 'https://mcp.linear.example/mcp', 'oauth');
SELECT slug, name, url, auth_type, oauth_authorized, header_keys, reauth_required FROM mcp_servers;
-- The header value is a secret, even to its owner:
SELECT headers FROM user_mcp_servers;
SQL

say "as bob: alice's servers are invisible and untouchable"
demo -U bob <<'SQL'
SELECT count(*) AS servers_bob_sees FROM mcp_servers;
UPDATE user_mcp_servers SET url = 'https://evil.example/mcp';
DELETE FROM user_mcp_servers;
INSERT INTO user_mcp_servers (user_id, name, url) VALUES ('alice', 'planted', 'https://evil.example/mcp');
SQL

say "as alice again: nothing changed"
demo -U alice -c "SELECT slug, url FROM mcp_servers ORDER BY slug"
