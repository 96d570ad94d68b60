#!/usr/bin/env bash
# The connectors page (examples/web-app) in a real browser: headless Chromium
# from Debian, driven by playwright-core, against a throwaway cluster and the
# fixture with its login form. The app connects as one pooled role ("app")
# and sets the user per transaction (mcp_oauth.identity =
# 'setting:app.user_id'). Screenshots of every step are kept in
# $MCP_OAUTH_ARTIFACTS (default target/browser-screenshots); the README shows
# the copies in docs/screenshots (refresh them with
# MCP_OAUTH_ARTIFACTS=docs/screenshots bash tests/browser/run.sh).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../lib.sh"
node="$NODE22_BIN/node"
browser_dir="$TOOLS_DIR/browser"
[ -x "$node" ] && [ -d "$browser_dir/node_modules/playwright-core" ] && [ -x /usr/bin/chromium ] ||
  { echo "run scripts/setup.sh first (Node 22, playwright-core, chromium)"; exit 2; }
shots=${MCP_OAUTH_ARTIFACTS:-$ROOT_DIR/target/browser-screenshots}
mkdir -p "$shots" && rm -f "$shots"/connectors-*.png
# The application runs next to the installed packages (Node looks for them
# in the directories above).
rm -rf "$browser_dir/app" && cp -r "$ROOT_DIR/examples/web-app" "$browser_dir/app" && cp "$here/connectors.mjs" "$browser_dir/"

fixture_cluster 'kill $(cat "$dir/app.pid" 2>/dev/null) 2>/dev/null'
app_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
app="http://127.0.0.1:$app_port"
dev_settings
psql_q >/dev/null <<SQL
ALTER SYSTEM SET mcp_oauth.redirect_uri = '$app/oauth/callback';
ALTER SYSTEM SET mcp_oauth.identity = 'setting:app.user_id';
SELECT pg_reload_conf();
CREATE EXTENSION mcp_oauth;
CREATE ROLE app LOGIN;
GRANT mcp_oauth_user TO app;
SQL
api_key="key-$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')"
behave "{\"login_form\": true, \"api_key\": \"$api_key\"}" >/dev/null
(cd "$browser_dir/app" && PGUSER=app PORT=$app_port APP_ORIGIN=$app exec "$node" server.mjs >"$dir/app.log" 2>&1) &
echo $! >"$dir/app.pid"
for _ in $(seq 50); do curl -s -o /dev/null "$app/login" && break; sleep 0.1; done
revocations_before=$(stat revocation_requests)

out=$(cd "$browser_dir" && "$node" connectors.mjs "$app/" "$base" "$shots" "$api_key" 2>&1)
echo "$out"
check "the walk-through in the browser passed every step" "^0$" "$(grep -c '^FAIL' <<<"$out")"
check "... all of them" "^3[0-9]$" "$(grep -c '^ok' <<<"$out")"
check "the user went through the login form twice (sign in, sign in again)" "^2$" "$(stat code_exchanges)"
check "Disconnect revoked at the authorization server" "^[1-9]" "$(delta "$revocations_before" "$(stat revocation_requests)")"
check "Delete removed Alice's row; Bob's stays" "^bob$" "$(psql_q -At -c "SELECT string_agg(user_id, ',') FROM user_mcp_servers")"
check "the stored header value is sealed, not plain" "^f$" \
  "$(psql_q -At -c "SELECT position('$api_key' in headers::text) > 0 FROM user_mcp_servers WHERE user_id = 'bob'")"
check "a screenshot of each step" "^8$" "$(ls "$shots"/connectors-*.png 2>/dev/null | wc -l)"
[ "$failed" -eq 0 ] || { echo "app log:"; tail -20 "$dir/app.log"; }
finish_checks browser
