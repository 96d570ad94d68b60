# The test harness every suite shares (and the demo's set-up): a throwaway
# cluster and loopback fixtures removed at exit, development settings,
# application roles, a sign-in with curl as the browser, and the assertions
# check / refute / expect_error. Source it; it sources scripts/lib.sh.
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

passed=0
failed=0
check() {
  local name=$1 expected=$2 actual=$3
  if grep -qE -- "$expected" <<<"$actual"; then
    passed=$((passed + 1))
    echo "ok   - $name"
  else
    failed=$((failed + 1))
    echo "FAIL - $name"
    echo "       expected to match: $expected"
    echo "       got: $(head -c 2000 <<<"$actual")"
  fi
}
refute() {
  local name=$1 unexpected=$2 actual=$3
  if grep -qE -- "$unexpected" <<<"$actual"; then
    failed=$((failed + 1))
    echo "FAIL - $name"
    echo "       must not match: $unexpected"
  else
    passed=$((passed + 1))
    echo "ok   - $name"
  fi
}


# expect_error NAME SQLSTATE PATTERN -- psql args...: the statement fails
# with SQLSTATE and its message/DETAIL matches PATTERN.
expect_error() {
  local name=$1 state=$2 pattern=$3
  shift 4
  local out
  out=$("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -v VERBOSITY=verbose "$@" 2>&1)
  check "$name (SQLSTATE $state)" "ERROR:  $state:" "$out"
  check "$name (message)" "$pattern" "$out"
}

# learned ID PATTERN: waits (at most 5 s) until what the backends learned
# about the row's server, shared through the row, matches PATTERN.
learned() {
  local out=""
  for _ in $(seq 50); do
    out=$(psql_q -U alice -At -c "SELECT mcp_protocol::text FROM user_mcp_servers WHERE id = '$1'" 2>&1)
    grep -qE -- "$2" <<<"$out" && break
    sleep 0.1
  done
  echo "$out"
}

# throwaway_cluster [CLEANUP]: a cluster in $dir, removed at exit with
# every fixture started for it, after CLEANUP (a command).
throwaway_cluster() {
  dir=$(scratch_dir)
  trap "${1:-true}; stop_fixtures '$dir'; stop_cluster '$dir'; rm -rf '$dir'" EXIT
  start_cluster "$dir"
}
# cluster_conf: appends standard input to the cluster's postgresql.conf and
# restarts it.
cluster_conf() {
  cat >>"$dir/data/postgresql.conf"
  restart_cluster
}
restart_cluster() { as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w restart >/dev/null; }

# fixture_cluster [CLEANUP]: a throwaway cluster and the fixture ($base).
fixture_cluster() {
  throwaway_cluster "${1:-true}"
  base=$(start_fixture "$dir")
}
# fixture_config URL [JSON] / fixture_stat URL FIELD: how the fixture at URL
# behaves from now on, and what it counted.
fixture_config() { curl -s -X POST -H 'content-type: application/json' -d "${2:-{\}}" "$1/_fixture/config"; }
# A counter that cannot be read (the fixture unreachable, a field it does not
# have) is "unreadable", which no check of a number accepts; differences go
# through delta, which stays "unreadable" too.
fixture_stat() {
  local out
  out=$(curl -sf --max-time 5 "$1/_fixture/stats" | jq -r "(.$2) as \$v | if \$v == null then error(\"no such field\") else \$v end" 2>/dev/null) &&
    [ -n "$out" ] && echo "$out" || echo unreadable
}
# delta BEFORE AFTER: AFTER - BEFORE, or "unreadable" unless both are numbers.
delta() { [[ $1 =~ ^[0-9]+$ && $2 =~ ^[0-9]+$ ]] && echo $(($2 - $1)) || echo unreadable; }
behave() { fixture_config "$base" "${1:-{\}}"; }
stat() { fixture_stat "$base" "$1"; }

# dev_settings: what a sign-in against loopback fixtures needs (a state
# secret, a redirect URI, plain http on loopback).
dev_settings() {
  psql_q >/dev/null <<'SQL'
ALTER SYSTEM SET mcp_oauth.state_secret = 'test-suite-state-secret-0123456789abcdef';
ALTER SYSTEM SET mcp_oauth.redirect_uri = 'http://127.0.0.1:1/callback';
ALTER SYSTEM SET mcp_oauth.allow_http_loopback = on;
SELECT pg_reload_conf();
SQL
}
# app_roles NAME...: application users (login roles with mcp_oauth_user).
app_roles() {
  local role
  for role in "$@"; do psql_q -c "CREATE ROLE $role LOGIN" -c "GRANT mcp_oauth_user TO $role" >/dev/null; done
}
as_alice() { psql_q -U alice -At "$@"; }

# signin_ready: development settings, the extension, and alice.
signin_ready() {
  dev_settings
  psql_q -c "CREATE EXTENSION mcp_oauth" >/dev/null
  app_roles alice
}

# browser_approve URL: what a browser does with an authorization URL the
# fixture approves at once: prints the callback URL it is redirected to.
browser_approve() { curl -s -o /dev/null -w '%{redirect_url}' "$1"; }

# sign_in ID: alice's whole sign-in to row ID, as a browser would.
sign_in() {
  local url
  url=$(as_alice -c "SELECT mcp_oauth_start('$1')")
  as_alice -c "SELECT mcp_oauth_callback('$(browser_approve "$url")')" >/dev/null
}

finish_checks() {
  echo "integration $1: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
