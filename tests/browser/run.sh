#!/usr/bin/env bash
# The example application (examples/web-app) in a real browser: headless
# Chromium from Debian, driven by playwright-core, against a throwaway
# cluster and the fixture with its login form. Screenshots of every step
# are kept in $MCP_OAUTH_ARTIFACTS (default target/browser-screenshots).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../lib.sh"
node="$NODE22_BIN/node"
browser_dir="$TOOLS_DIR/browser"
[ -x "$node" ] && [ -d "$browser_dir/node_modules/playwright-core" ] && [ -x /usr/bin/chromium ] ||
  { echo "run scripts/setup.sh first (Node 22, playwright-core, chromium)"; exit 2; }
shots=${MCP_OAUTH_ARTIFACTS:-$ROOT_DIR/target/browser-screenshots}
mkdir -p "$shots" && rm -f "$shots"/*.png
# The application runs next to the installed packages (Node looks for them
# in the directories above).
rm -rf "$browser_dir/app" && cp -r "$ROOT_DIR/examples/web-app" "$browser_dir/app" && cp "$here/signin.mjs" "$browser_dir/"

fixture_cluster 'kill $(cat "$dir/app.pid" 2>/dev/null) 2>/dev/null'
app_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
app="http://127.0.0.1:$app_port"
dev_settings
psql_q -c "ALTER SYSTEM SET mcp_oauth.redirect_uri = '$app/oauth/callback'" -c "SELECT pg_reload_conf()" >/dev/null
psql_q -c "CREATE EXTENSION mcp_oauth" >/dev/null
app_roles alice
behave '{"login_form": true}' >/dev/null
(cd "$browser_dir/app" && PGUSER=alice PORT=$app_port APP_ORIGIN=$app exec "$node" server.mjs >"$dir/app.log" 2>&1) &
echo $! >"$dir/app.pid"
for _ in $(seq 50); do curl -s -o /dev/null "$app/" && break; sleep 0.1; done

out=$(cd "$browser_dir" && "$node" signin.mjs "$app/" "$base/mcp" "$shots" 2>&1)
echo "$out"
check "the walk-through in the browser passed every step" "^0$" "$(grep -c '^FAIL' <<<"$out")"
check "... all seven of them" "^7$" "$(grep -c '^ok' <<<"$out")"
check "the sign-in is stored" "^t$" "$(as_alice -c "SELECT bool_and(oauth_authorized) FROM mcp_servers")"
check "the user went through the login form" "^1$" "$(stat code_exchanges)"
check "a screenshot of each step" "^7$" "$(ls "$shots"/*.png 2>/dev/null | wc -l)"
[ "$failed" -eq 0 ] || { echo "app log:"; tail -20 "$dir/app.log"; }
finish_checks browser
