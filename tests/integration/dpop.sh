#!/usr/bin/env bash
# DPoP (README, "DPoP"): against the fixture taking ES256 proofs, tokens are
# bound to a key of the row's own, and a token without a proof of that key
# is refused, so a copy of the token is worthless.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../lib.sh"

fixture_cluster
signin_ready
behave '{"dpop": true}'
id=$(as_alice -c "INSERT INTO user_mcp_servers (name, slug, url, auth_type) VALUES ('Bound', 'bound', '$base/mcp', 'oauth') RETURNING id")
sign_in "$id"
check "the sign-in's token is bound to a key" "^1$" "$(stat dpop_bound_tokens)"
first_key=$(stat last_bound_jkt)
check "... whose thumbprint the server computed" "^[A-Za-z0-9_-]{43}$" "$first_key"
check "a call with it is answered" "^bound$" "$(as_alice -c "SELECT mcp_call_tool('$id', 'echo', '{\"text\": \"bound\"}')->'content'->0->>'text'")"
check "... each request with a proof the server verified" "^[1-9][0-9]*$" "$(stat dpop_proofs_accepted)"
check "... and never one refused" "^0$" "$(stat dpop_refused)"

# The stolen token: what the server received, replayed without the key.
token=$(curl -s "$base/_fixture/stats" | jq -r '.bearer_tokens[-1]')
mcp_post() { curl -s -o /dev/null -w '%{http_code}' -X POST -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \
  -H 'mcp-protocol-version: 2026-07-28' -H 'mcp-method: tools/list' "$@" \
  -d '{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}' "$base/mcp"; }
refused=$(stat dpop_refused)
check "the token replayed as Bearer is refused" "^401$" "$(mcp_post -H "authorization: Bearer $token")"
check "the token replayed as DPoP without a proof is refused" "^401$" "$(mcp_post -H "authorization: DPoP $token")"
check "... both for want of a proof of the key" "^2$" "$(delta "$refused" "$(stat dpop_refused)")"
check "... while the row's own calls go on" "^still$" "$(as_alice -c "SELECT mcp_call_tool('$id', 'echo', '{\"text\": \"still\"}')->'content'->0->>'text'")"

# A refresh is proved with the same key, and its tokens stay bound.
behave '{"dpop": true, "revoke_access": true}'
behave '{"dpop": true}'
refreshes=$(stat refreshes)
check "after the server drops the token, a refresh with a proof" "^refreshed$" \
  "$(as_alice -c "SELECT mcp_call_tool('$id', 'echo', '{\"text\": \"refreshed\"}')->'content'->0->>'text'")"
check "... one refresh" "^1$" "$(delta "$refreshes" "$(stat refreshes)")"
check "... bound to the same key" "^$first_key$" "$(stat last_bound_jkt)"

# Nonces, at the token endpoint and at the MCP server: answered once each.
behave '{"dpop": true, "dpop_nonce": true, "revoke_access": true}'
behave '{"dpop": true, "dpop_nonce": true}'
challenges=$(stat dpop_nonce_challenges)
# (One session: a backend keeps the nonce it was given; another learns it.)
out=$(as_alice -c "SELECT mcp_call_tool('$id', 'echo', '{\"text\": \"nonce\"}')->'content'->0->>'text'" \
               -c "SELECT count(*) FROM pg_sleep(0)" -c "SELECT mcp_call_tool('$id', 'echo', '{\"text\": \"again\"}')->'content'->0->>'text'")
check "servers that demand nonces are answered, and the next call too" "^nonce 1 again$" "$(echo $out)"
check "... after one challenge from each, none for the next call" "^2$" "$(delta "$challenges" "$(stat dpop_nonce_challenges)")"

# Four new backends at once on a dropped token, both servers demanding
# nonces: one refresh between them; each learns the MCP server's nonce and
# is answered; no proof is refused.
behave '{"dpop": true, "dpop_nonce": true, "revoke_access": true}'
behave '{"dpop": true, "dpop_nonce": true}'
refreshes=$(stat refreshes) refused=$(stat dpop_refused)
for i in 1 2 3 4; do
  as_alice -c "SELECT mcp_call_tool('$id', 'echo', '{\"text\": \"n$i\"}')->'content'->0->>'text'" >"$dir/nonce.$i" 2>&1 &
done
wait
check "four backends meeting nonces and a dropped token at once are all answered" "^n1n2n3n4$" "$(cat "$dir"/nonce.[1-4] | tr -d '\n')"
check "... after one refresh between them" "^1$" "$(delta "$refreshes" "$(stat refreshes)")"
check "... with no proof refused" "^0$" "$(delta "$refused" "$(stat dpop_refused)")"

# A server that refuses the proof itself (invalid_dpop_proof, RFC 9449
# §7.1; e.g. its clock and the database's disagree): the token is not at
# fault, so no refresh is spent and no new sign-in is asked for.
behave '{"dpop": true, "dpop_proof_refused": "DPoP proof iat is not recent enough"}'
refreshes=$(stat refreshes)
out=$(as_alice -v VERBOSITY=verbose -c "SELECT mcp_call_tool('$id', 'echo', '{\"text\": \"x\"}')" 2>&1)
check "a refused proof is MC005, with the server's reason" "ERROR:  MC005: the MCP server refused the DPoP proof.*DETAIL:  .*invalid_dpop_proof[^:]*: DPoP proof iat is not recent enough" "$(tr -d '\n' <<<"$out")"
check "... and a hint at the clock" "HINT:  .*clock" "$out"
check "... no refresh spent on it" "^0$" "$(delta "$refreshes" "$(stat refreshes)")"
check "... the row not marked for a new sign-in" "^f$" "$(as_alice -c "SELECT reauth_required FROM mcp_servers WHERE id = '$id'")"
behave '{"dpop": true}'
check "... and once the server takes proofs again, calls go on" "^again$" \
  "$(as_alice -c "SELECT mcp_call_tool('$id', 'echo', '{\"text\": \"again\"}')->'content'->0->>'text'")"

# A new sign-in, a new key.
behave '{"dpop": true}'
sign_in "$id"
check "a new sign-in binds its tokens to a new key" "^[A-Za-z0-9_-]{43}$" "$(stat last_bound_jkt)"
refute "... not the old one" "^$first_key$" "$(stat last_bound_jkt)"
check "... and works" "^new key$" "$(as_alice -c "SELECT mcp_call_tool('$id', 'echo', '{\"text\": \"new key\"}')->'content'->0->>'text'")"

# An authorization server that takes proofs in front of an MCP server that
# knows only Bearer (oidc-provider before an SDK server): no binding, or
# the server would refuse every token.
behave '{"dpop_as_only": true}'
plain=$(as_alice -c "INSERT INTO user_mcp_servers (name, slug, url, auth_type) VALUES ('Plain', 'plain', '$base/mcp', 'oauth') RETURNING id")
bound=$(stat dpop_bound_tokens)
sign_in "$plain"
check "a resource that does not take DPoP gets a Bearer token" "^0$" "$(delta "$bound" "$(stat dpop_bound_tokens)")"
check "... and its calls work" "^plain$" "$(as_alice -c "SELECT mcp_call_tool('$plain', 'echo', '{\"text\": \"plain\"}')->'content'->0->>'text'")"

# Unattended grants bind their tokens too.
behave '{"dpop": true}'
cc=$(as_alice -c "INSERT INTO user_mcp_servers (name, slug, url, auth_type) VALUES ('Service', 'service', '$base/mcp', 'client_credentials') RETURNING id")
as_alice -c "SELECT mcp_oauth_set_client('$cc', 'fixture-preregistered', 'fixture-preregistered-secret')" >/dev/null
bound=$(stat dpop_bound_tokens)
check "a client credentials token is bound and used with proofs" "^service$" \
  "$(as_alice -c "SELECT mcp_call_tool('$cc', 'echo', '{\"text\": \"service\"}')->'content'->0->>'text'")"
check "... one more bound token" "^1$" "$(delta "$bound" "$(stat dpop_bound_tokens)")"
check "no proof was ever refused but the replays' and the refused one's" "^3$" "$(stat dpop_refused)"

finish_checks dpop
