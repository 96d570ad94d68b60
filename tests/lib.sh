# Assertions for the integration scripts. Source it.
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

# fixture_cluster [CLEANUP]: a throwaway cluster ($dir) and the fixture
# ($base), both removed at exit after CLEANUP (a command).
fixture_cluster() {
  dir=$(scratch_dir)
  trap "${1:-true}; stop_fixtures '$dir'; stop_cluster '$dir'; rm -rf '$dir'" EXIT
  start_cluster "$dir"
  base=$(start_fixture "$dir")
}
behave() { curl -s -X POST -H 'content-type: application/json' -d "${1:-{\}}" "$base/_fixture/config"; }
stat() { curl -s "$base/_fixture/stats" | jq -r ".$1"; }
as_alice() { psql_q -U alice -At "$@"; }

# signin_ready: the settings a sign-in needs (the fixture on loopback), the
# extension, and alice, an application user.
signin_ready() {
  psql_q <<'SQL'
ALTER SYSTEM SET mcp_oauth.state_secret = 'integration-state-secret-0123456789abcdef';
ALTER SYSTEM SET mcp_oauth.redirect_uri = 'http://127.0.0.1:1/callback';
ALTER SYSTEM SET mcp_oauth.allow_http_loopback = on;
SELECT pg_reload_conf();
CREATE EXTENSION mcp_oauth;
CREATE ROLE alice LOGIN;
GRANT mcp_oauth_user TO alice;
SQL
}

# sign_in ID: alice's whole sign-in to row ID, as a browser would.
sign_in() {
  local url location
  url=$(as_alice -c "SELECT mcp_oauth_start('$1')")
  location=$(curl -s -o /dev/null -w '%{redirect_url}' "$url")
  as_alice -c "SELECT mcp_oauth_callback('$location')" >/dev/null
}

finish_checks() {
  echo "integration $1: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
