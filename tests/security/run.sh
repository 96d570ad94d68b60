#!/usr/bin/env bash
# The hostile-input suite. It runs inside a network and mount namespace of
# its own (`unshare --net --mount`, loopback brought up), so that even a
# faulty build can reach no private, metadata or public address: only
# 127.0.0.0/8 and ::1 exist in here. A private /etc/hosts maps test names to
# the addresses the cases need. Every case is one line of SECURITY.md.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -z "${MCP_OAUTH_IN_NETNS:-}" ]; then
  [ "$(id -u)" -eq 0 ] || exec sudo -E bash "$0" "$@"
  exec unshare --net --mount -- env MCP_OAUTH_IN_NETNS=1 bash "$0" "$@"
fi
ip link set lo up
hosts=$(mktemp)
cat >"$hosts" <<'HOSTS'
127.0.0.1 localhost
::1 localhost
127.0.0.2 loop.test
10.1.2.3 internal.test
169.254.169.254 metadata.test
93.184.216.34 rebind.test
10.1.2.3 rebind.test
93.184.216.34 evil.localhost
HOSTS
chmod 644 "$hosts"
mount --bind "$hosts" /etc/hosts

source "$here/../lib.sh"

throwaway_cluster "rm -f '$hosts'"
# Log everything the server is willing to log; checked for secrets at the
# end. The settings are in the file, so no logged statement carries them.
cluster_conf <<CONF
log_statement = 'all'
log_min_messages = debug1
log_error_verbosity = verbose
mcp_oauth.state_secret = 'security-suite-state-secret-0123456789abcdef'
mcp_oauth.redirect_uri = 'http://127.0.0.1:1/callback'
mcp_oauth.allow_http_loopback = on
CONF
base=$(start_fixture "$dir")
other=$(start_fixture "$dir" fixture2)
port=${base##*:}

psql_q -c "CREATE EXTENSION mcp_oauth" >/dev/null
app_roles alice mallory
new_row() {  # new_row URL -> id (an OAuth row of alice)
  psql_q -U alice -At -c "INSERT INTO user_mcp_servers (name, url, auth_type) VALUES ('case', '$1', 'oauth') RETURNING id"
}
# hostile NAME STATE PATTERN SETTINGS SQL: SQL as alice after superuser SETTINGS fails with STATE.
hostile() {
  local name=$1 state=$2 pattern=$3 settings=$4 sql=$5
  expect_error "$name" "$state" "$pattern" -- -c "$settings" -c "SET ROLE alice" -c "$sql"
}
start_of() { echo "SELECT mcp_oauth_start('$(new_row "$1")')"; }
ok_row=$(new_row "$base/mcp")

# allowed NAME SETTINGS SQL: the positive control of a refusal. With the
# setting that permits the target, the policy lets the request go: it then
# fails for what it is (nothing listens there, or speaks TLS), not with MC006.
allowed() {
  local name=$1 settings=$2 sql=$3 out
  out=$("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -c "$settings" -c "SET ROLE alice" -c "$sql" 2>&1)
  refute "$name: not refused by the policy" "MC006|blocked by the network policy" "$out"
  check "$name: the request was attempted" "ERROR:  MC00[357]:|/authorize\?" "$out"
}

say "addresses, in every encoding"
# https targets, so that the address rule (not the https rule) is what
# refuses them, each with its own reason in DETAIL.
for target in 10.0.0.1 172.16.0.1 192.168.1.1 '[fd00::1]' '[fe80::1]' 0.0.0.0 100.64.0.1 '[::ffff:10.0.0.1]' '[64:ff9b::a00:1]' \
              '[::ffff:0:a00:1]' '[100::1]' '[2001:2::1]'; do
  behave "{\"challenge_resource_metadata\": \"https://$target/.well-known/oauth-protected-resource\"}"
  hostile "resource_metadata at $target" MC006 ": the address is not public" "SELECT 1" "$(start_of "$base/mcp")"
  allowed "resource_metadata at $target with allow_private_networks" "SET mcp_oauth.allow_private_networks = on" "$(start_of "$base/mcp")"
done
behave '{"challenge_resource_metadata": "https://169.254.169.254/.well-known/oauth-protected-resource"}'
hostile "resource_metadata at 169.254.169.254" MC006 ": the address is a cloud metadata endpoint" "SELECT 1" "$(start_of "$base/mcp")"
behave '{}'
for target in 2130706433 0x7f000001 0177.0.0.1 127.1 '[::1]' loop.test; do
  hostile "loopback as $target with allow_http_loopback off" MC006 ": the address is not public" \
    "SET mcp_oauth.allow_http_loopback = off" "$(start_of "https://$target:$port/mcp")"
  allowed "loopback as $target with allow_private_networks" \
    "SET mcp_oauth.allow_private_networks = on" "$(start_of "https://$target:$port/mcp")"
done
hostile "a name resolving to a private address" MC006 "internal.test: the address is not public" "SET mcp_oauth.allow_http_loopback = off" "$(start_of "https://internal.test/mcp")"
allowed "a name resolving to a private address with allow_private_networks" "SET mcp_oauth.allow_private_networks = on" "$(start_of "https://internal.test/mcp")"
hostile "a name resolving to a metadata address" MC006 "metadata.test: the address is a cloud metadata endpoint" "SET mcp_oauth.allow_private_networks = on" "$(start_of "https://metadata.test/mcp")"
hostile "rebinding: one name, a public and a private address" MC006 "rebind.test: the address is not public" "SELECT 1" "$(start_of "https://rebind.test/mcp")"
hostile "metadata even with allow_private_networks" MC006 ": the address is a cloud metadata endpoint" "SET mcp_oauth.allow_private_networks = on" "$(start_of "https://[::ffff:169.254.169.254]/mcp")"
hostile "metadata in NAT64 form even with allow_private_networks" MC006 ": the address is a cloud metadata endpoint" "SET mcp_oauth.allow_private_networks = on" "$(start_of "https://[64:ff9b::a9fe:a9fe]/mcp")"
hostile "metadata in 6to4 form even with allow_private_networks" MC006 ": the address is a cloud metadata endpoint" "SET mcp_oauth.allow_private_networks = on" "$(start_of "https://[2002:a9fe:a9fe::]/mcp")"
hostile "metadata in SIIT (IPv4-translated) form even with allow_private_networks" MC006 ": the address is a cloud metadata endpoint" "SET mcp_oauth.allow_private_networks = on" "$(start_of "https://[::ffff:0:a9fe:a9fe]/mcp")"
hostile "metadata in IPv4-compatible form even with allow_private_networks" MC006 ": the address is a cloud metadata endpoint" "SET mcp_oauth.allow_private_networks = on" "$(start_of "https://[::a9fe:a9fe]/mcp")"
hostile "a .localhost name allowed plain http must resolve to loopback" MC006 "evil.localhost: a localhost name must resolve to loopback addresses only" "SELECT 1" "$(start_of "http://evil.localhost:$port/mcp")"
allowed "... as localhost does" "SELECT 1" "$(start_of "http://localhost:$port/mcp")"
hostile "allowed_hosts excludes everything else" MC006 "the host is not in mcp_oauth.allowed_hosts" "SET mcp_oauth.allowed_hosts = 'mcp.example.com'" "$(start_of "$base/mcp")"
allowed "... and lets a listed host through" "SET mcp_oauth.allowed_hosts = '127.0.0.1:$port'" "$(start_of "$base/mcp")"

say "schemes, in every spelling"
for url in 'javascript:alert(1)' 'data:text/html,x' 'file:///etc/passwd' 'vbscript:msgbox(1)' 'JaVaScRiPt:alert(1)' ' javascript:alert(1)' 'https://user:pw@mcp.example.com/mcp' 'gopher://x.example/' 'https://[fe80::1%25eth0]/mcp'; do
  expect_error "server URL $url" 23514 "invalid MCP server URL" -- -U alice -c "INSERT INTO user_mcp_servers (name, url) VALUES ('x', \$q\$$url\$q\$)"
done
for field in authorization_endpoint token_endpoint; do
  for bad in 'javascript:alert(1)' 'file:///etc/passwd' ' data:text/plain,x'; do
    behave "{\"auth_server_override\": {\"$field\": \"$bad\"}}"
    hostile "$field = $bad" MC003 "$field" "SELECT 1" "$(start_of "$base/mcp")"
  done
done
for bad in 'javascript:alert(1)' 'file:///etc/passwd' 'data:text/plain,x' 'JAVASCRIPT:alert(1)'; do
  behave "{\"challenge_resource_metadata\": \"$bad\"}"
  hostile "resource_metadata = $bad" MC006 "only http and https" "SELECT 1" "$(start_of "$base/mcp")"
  behave "{\"resource_metadata_override\": {\"authorization_servers\": [\"$bad\"]}}"
  hostile "authorization server = $bad" MC003 "not an http\(s\) URL" "SELECT 1" "$(start_of "$base/mcp")"
  behave "{\"auth_server_override\": {\"registration_endpoint\": \"$bad\"}}"
  hostile "registration_endpoint = $bad" MC003 "registration_endpoint" "SELECT 1" "$(start_of "$base/mcp")"
done
expect_error "redirect_uri = javascript: is refused by SET" 22023 "redirect_uri" -- -c "SET mcp_oauth.redirect_uri = 'javascript:alert(1)'"
# https, so that the address rule (not the https rule) is what refuses it.
behave '{"auth_server_override": {"registration_endpoint": "https://169.254.169.254/register"}}'
hostile "registration endpoint on a metadata address" MC006 "169.254.169.254: the address is a cloud metadata endpoint" "SELECT 1" "$(start_of "$base/mcp")"
behave '{}'
rm -f /tmp/mcp_oauth_pwned
# No whitespace, so that the table accepts it and the URL is really used.
shelly="$base/mcp;\$(touch\${IFS}/tmp/mcp_oauth_pwned)|id&\`id\`"
shell_row=$(new_row "$shelly")
check "a URL with shell metacharacters is stored as it is" "^1$" \
  "$(psql_q -U alice -At -c "SELECT count(*) FROM mcp_servers WHERE id = '$shell_row' AND url = \$q\$$shelly\$q\$")"
out=$(psql_q -U alice -At -c "SELECT mcp_oauth_start('$shell_row')" 2>&1)
check "... and used as data: the sign-in starts" "^http://127\.0\.0\.1:$port/authorize\?" "$out"
check "... nothing was executed" "^absent$" "$([ -e /tmp/mcp_oauth_pwned ] && echo present || echo absent)"

say "metadata that lies"
behave '{"wrong_issuer": true}';   hostile "issuer mismatch" MC003 "issuer" "SELECT 1" "$(start_of "$base/mcp")"
behave '{"wrong_resource": true}'; hostile "resource mismatch" MC003 "not for this server" "SELECT 1" "$(start_of "$base/mcp")"
behave '{"no_s256": true}';        hostile "S256 missing" MC003 "S256" "SELECT 1" "$(start_of "$base/mcp")"
behave '{"metadata_bytes": 52428800}'
hostile "a 50 MB metadata document" MC003 "larger than" "SELECT 1" "$(start_of "$base/mcp")"
behave '{"endless_metadata": true}'
hostile "an endless metadata document" MC003 "larger than" "SELECT 1" "$(start_of "$base/mcp")"
behave '{"hang": true}'
hostile "a server that never sends headers (slow loris)" MC007 "did not answer in time" "SET mcp_oauth.request_timeout = '1s'" "$(start_of "$base/mcp")"
behave '{}'
# A new authorization server in the metadata means a new registration.
psql_q -U alice -c "SELECT mcp_oauth_start('$ok_row')" >/dev/null
first_client=$(psql_q -U alice -At -c "SELECT oauth_metadata #>> '{client,client_id}' FROM user_mcp_servers WHERE id = '$ok_row'")
behave "{\"resource_metadata_override\": {\"authorization_servers\": [\"$other\"]}}"
psql_q -U alice -c "SELECT mcp_oauth_start('$ok_row')" >/dev/null
check "a new authorization server: a new registration, bound to it" "^$other\|t$" \
  "$(psql_q -U alice -At -c "SELECT oauth_metadata #>> '{client,issuer}', oauth_metadata #>> '{client,client_id}' IS DISTINCT FROM '$first_client' FROM user_mcp_servers WHERE id = '$ok_row'")"
check "... registered there once" "^1$" "$(fixture_stat "$other" registrations)"
check "... and nothing of the old registration was sent there" "^0\|0$" "$(fixture_stat "$other" token_requests)|$(fixture_stat "$other" credentialed_requests)"
behave '{}'

say "token responses that lie"
sign_in_callback() {  # a callback URL for a fresh flow of row $1
  browser_approve "$(as_alice -c "SELECT mcp_oauth_start('$1')")"
}
for body in '{"token_type": "Bearer"}' '{"access_token": "x", "token_type": "mac"}' '{"access_token": "x", "token_type": "Bearer", "expires_in": -5}' \
            '{"access_token": "x", "token_type": "Bearer", "expires_in": 1e12}' '{"access_token": "x"}' '[1, 2]'; do
  behave '{}'
  callback=$(sign_in_callback "$ok_row")
  behave "{\"token_body\": $body}"
  hostile "token response $body" MC004 "invalid response" "SELECT 1" "SELECT mcp_oauth_callback('$callback')"
done
behave '{}'
callback=$(sign_in_callback "$ok_row")
behave "{\"token_redirect\": \"$other/token\"}"
before=$(fixture_stat "$other" token_requests)
hostile "a redirect from the token endpoint is not followed" MC004 "invalid response" "SELECT 1" "SELECT mcp_oauth_callback('$callback')"
check "... the redirect's target received nothing" "^0$" "$(delta "$before" "$(fixture_stat "$other" token_requests)")"
behave '{}'

say "states that lie"
callback=$(sign_in_callback "$ok_row")
state=$(sed -n 's/.*[?&]state=\([^&]*\).*/\1/p' <<<"$callback")
code=$(sed -n 's/.*[?&]code=\([^&]*\).*/\1/p' <<<"$callback")
hostile "a truncated state" MC002 "state" "SELECT 1" "SELECT mcp_oauth_finish('${state:0:40}', '$code')"
expect_error "another user's state" MC002 "another user" -- -U mallory -c "SELECT mcp_oauth_finish('$state', '$code')"
hostile "iss mismatch, with a script in it" MC003 "another issuer" "SELECT 1" "SELECT mcp_oauth_finish('$state', '$code', '<script>alert(1)</script>')"
out=$(psql_q -U alice -c "SELECT mcp_oauth_finish('$state', '$code', '<script>alert(1)</script>')" 2>&1)
refute "... the script is not reflected raw" "<script>" "$out"
# Concurrent replay: two callbacks at once, exactly one wins. The token
# endpoint answers after 1.5 s, so the second arrives while the first is
# still exchanging the code, and must wait for it to learn the outcome.
behave '{"token_delay_ms": 1500}'
exchanges=$(fixture_stat "$base" code_exchanges)
replays=()
for r in 1 2; do
  (started=$(date +%s%3N); psql_q -U alice -At -c "SELECT mcp_oauth_callback('$callback')" >"$dir/replay.$r" 2>&1
   echo $(( $(date +%s%3N) - started )) >"$dir/replay.$r.ms") &
  replays+=($!)
done
wait "${replays[@]}"
behave '{}'
check "a concurrent replay: both callbacks were in flight together (each took over a second)" "^1 1$" \
  "$(( $(cat "$dir/replay.1.ms") >= 1000 )) $(( $(cat "$dir/replay.2.ms") >= 1000 ))"
check "a concurrent replay: exactly one callback succeeds" "^1$" "$(cat "$dir"/replay.[12] | grep -c "^$ok_row$")"
check "... the other is MC002" "already completed" "$(cat "$dir"/replay.[12])"
check "... and the code was redeemed exactly once" "^1$" "$(delta "$exchanges" "$(fixture_stat "$base" code_exchanges)")"
exchanges=$(fixture_stat "$base" code_exchanges)
expect_error "a replay after it" MC002 "already completed" -- -U alice -c "SELECT mcp_oauth_callback('$callback')"
check "... redeems nothing" "^0$" "$(delta "$exchanges" "$(fixture_stat "$base" code_exchanges)")"

say "redirects on MCP requests"
behave "{\"mcp_redirect\": \"http://10.0.0.1/mcp\"}"
hostile "an MCP redirect to an internal host" MC006 "another origin" "SELECT 1" "SELECT mcp_call_tool('$ok_row', 'echo')"
behave "{\"mcp_redirect\": \"$other/mcp\"}"
before=$(fixture_stat "$other" requests)
hostile "an MCP redirect to another origin" MC006 "another origin" "SELECT 1" "SELECT mcp_call_tool('$ok_row', 'echo')"
check "... the other origin received no request (no header left the origin)" "^0$" "$(delta "$before" "$(fixture_stat "$other" requests)")"
behave '{}'

say "arguments"
expect_error "a 1 MB callback URL" MC002 "too long" -- -U alice -c "SELECT mcp_oauth_callback('https://a/' || repeat('x', 1048576))"
expect_error "a 1 MB state" MC002 "malformed" -- -U alice -c "SELECT mcp_oauth_finish(repeat('A', 1048576), 'c')"
expect_error "CR/LF in a header value" 23514 "CR, LF" -- -U alice -c "INSERT INTO user_mcp_servers (name, url, headers) VALUES ('x', 'https://x.example/mcp', jsonb_build_object('X-A', E'v\\r\\nInjected: 1'))"
expect_error "args of the wrong type" 22023 "JSON object" -- -U alice -c "SELECT mcp_call_tool('$ok_row', 'echo', '\"text\"')"

say "the key file"
chmod 644 "$dir/encryption.key"
expect_error "a key file others can read is refused" MC008 "can be read by other users" -- -U alice -c "INSERT INTO user_mcp_servers (name, url, headers) VALUES ('k', 'https://k.example/mcp', '{\"X-K\": \"value-0001\"}')"
chmod 600 "$dir/encryption.key"

say "nothing secret in the server log"
secrets=$(curl -s "$base/_fixture/stats" | jq -r '.secrets[]'; curl -s "$other/_fixture/stats" | jq -r '.secrets[]')
count=$(wc -l <<<"$secrets")
leaked=0
while read -r secret; do
  [ -n "$secret" ] && grep -qF -- "$secret" "$dir/server.log" && leaked=$((leaked + 1))
done <<<"$secrets"
check "the log scan has secrets to look for" "^[1-9][0-9]*$" "$(grep -c . <<<"$secrets")"
check "no token, verifier or client secret in the log ($count checked, log_statement = all)" "^0$" "$leaked"
check "the log did record the statements" "mcp_oauth_callback" "$(cat "$dir/server.log")"

finish_checks security
