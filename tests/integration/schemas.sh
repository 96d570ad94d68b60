#!/usr/bin/env bash
# What servers hand over is checked before the application gets it: a
# tool's structuredContent against its outputSchema (README, "Calling
# tools"), and a skill's files against the server's own listing (README,
# "Skills"). A mismatch is MC005 naming what, never the data.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../lib.sh"

fixture_cluster
signin_ready
app_roles bob
behave '{"api_key": "key-0001"}'
id=$(as_alice -c "INSERT INTO user_mcp_servers (name, slug, url, headers) VALUES ('Calc', 'calc', '$base/mcp', '{\"X-Api-Key\": \"key-0001\"}') RETURNING id")
add() { as_alice -c "SELECT mcp_call_tool('$id', 'add', '{\"a\": 2, \"b\": 3}')->'structuredContent'"; }

lists=$(stat tools_lists)
check "a conforming result is returned" '^\{"sum": 5(\.0)?\}$' "$(add)"
check "... the schema learned from one tool list before the first call to the server" "^1$" "$(delta "$lists" "$(stat tools_lists)")"
out=$(as_alice -c "SELECT mcp_call_tool('$id', 'add', '{\"a\": 1, \"b\": 1}')->'structuredContent'" -c "SELECT mcp_call_tool('$id', 'add', '{\"a\": 1, \"b\": 2}')->'structuredContent'")
check "... and shared: no list again, in another backend either" "^1$" "$(delta "$lists" "$(stat tools_lists)")"

behave '{"api_key": "key-0001", "structured_override": {"sum": "five", "secret": "key-0001"}}'
expect_error "a value of the wrong type" MC005 "the result of tool add does not match its outputSchema" -- -U alice -c "SELECT mcp_call_tool('$id', 'add', '{}')"
out=$(psql_q -U alice -v VERBOSITY=verbose -c "SELECT mcp_call_tool('$id', 'add', '{}')" 2>&1)
check "... the DETAIL names where" 'DETAIL:  At structuredContent/sum: ' "$out"
refute "... without repeating the value" '"five"|five' "$out"
refute "... or a header the row sends" "key-0001" "$out"
check "... recorded on the row" "does not match its outputSchema" "$(as_alice -c "SELECT last_error FROM mcp_servers WHERE id = '$id'")"
behave '{"api_key": "key-0001", "structured_override": {"total": 5}}'
expect_error "a required member missing" MC005 "does not match its outputSchema" -- -U alice -c "SELECT mcp_call_tool('$id', 'add', '{}')"
behave '{"api_key": "key-0001", "omit_structured": true}'
expect_error "no structuredContent where a schema is declared" MC005 "does not match its outputSchema" -- -U alice -c "SELECT mcp_call_tool('$id', 'add', '{}')"
out=$(psql_q -U alice -c "SELECT mcp_call_tool('$id', 'add', '{}')" 2>&1)
check "... saying so" "has no structuredContent" "$out"
check "a tool without a schema is not checked" '^"hi"$' "$(as_alice -c "SELECT mcp_call_tool('$id', 'echo', '{\"text\": \"hi\"}')->'content'->0->'text'")"
check "a tool error is a result, not checked" "^true$" "$(as_alice -c "SELECT mcp_call_tool('$id', 'fail', '{}')->'isError'")"
behave '{"api_key": "key-0001"}'
check "the server fixed: results pass again" '^\{"sum": 5(\.0)?\}$' "$(add)"
check "mcp_call_tools reports a mismatch for that call alone" "^false\|MC005,true$" \
  "$(behave '{"api_key": "key-0001", "omit_structured": true}'; as_alice -c "SELECT string_agg(coalesce(e->>'ok' || '|' || (e->'error'->>'sqlstate'), e->>'ok'), ',') FROM jsonb_array_elements(mcp_call_tools(jsonb_build_array(
     jsonb_build_object('server_id', '$id', 'name', 'add', 'arguments', '{}'::jsonb),
     jsonb_build_object('server_id', '$id', 'name', 'echo', 'arguments', '{\"text\": \"x\"}'::jsonb)))) e")"

# --- Skills: nothing read on listing; every file verified on reading.
reads() { curl -s "$base/_fixture/stats" | jq -r '.skill_reads | join(",")'; }
out=$(as_alice -c "SELECT name, description, uri, jsonb_array_length(files) FROM mcp_list_skills('$id')")
check "the server's skills are listed" "^pdf-processing\|Extract, fill, and assemble PDF documents\|skill://pdf-processing/SKILL.md\|2$" "$out"
check "... and no skill file was read (no prefetch)" "^1 $" "$(stat skills_lists) $(reads)"
out=$(as_alice -c "SELECT r->>'skill', r->>'size', r->'frontmatter'->>'name', r->>'text' FROM mcp_read_skill('$id', 'skill://pdf-processing/SKILL.md') r")
check "a SKILL.md that matches its listing is returned" "^skill://pdf-processing/SKILL.md\|121\|pdf-processing\|---" "$out"
check "... then a supporting file it lists" "^Forms: fill every field.$" \
  "$(as_alice -c "SELECT mcp_read_skill('$id', 'skill://pdf-processing/references/FORMS.md')->>'text'")"
check "... each read once, on demand" "^skill://pdf-processing/SKILL.md,skill://pdf-processing/references/FORMS.md$" "$(reads)"
expect_error "a file no skill lists is not read" MC005 "o skill listed by the server has the file" -- \
  -U alice -c "SELECT mcp_read_skill('$id', 'skill://pdf-processing/secret.md')"
check "... nothing was asked of the server for it" "^skill://pdf-processing/SKILL.md,skill://pdf-processing/references/FORMS.md$" "$(reads)"
for tamper in digest size frontmatter; do
  behave "{\"api_key\": \"key-0001\", \"skill_tamper\": \"$tamper\"}"
  expect_error "a SKILL.md whose $tamper breaks the listing" MC005 "the skill file cannot be used" -- \
    -U alice -c "SELECT mcp_read_skill('$id', 'skill://pdf-processing/SKILL.md')"
done
out=$(psql_q -U alice -v VERBOSITY=verbose -c "SELECT mcp_read_skill('$id', 'skill://pdf-processing/SKILL.md')" 2>&1)
check "... the DETAIL says which field" "differs from the listing in description" "$out"
refute "... never what the file says" "Exfiltrate" "$out"
behave '{"api_key": "key-0001", "skill_tamper": "size"}'
out=$(psql_q -U alice -v VERBOSITY=verbose -c "SELECT mcp_read_skill('$id', 'skill://pdf-processing/SKILL.md')" 2>&1)
check "... or by how many bytes" "has 130 bytes, but the listing says 121" "$out"
expect_error "NULL uri" 22004 "uri must not be null" -- -U alice -c "SELECT mcp_read_skill('$id', NULL)"
expect_error "another user's server" 42704 "not found" -- -U bob -c "SELECT * FROM mcp_list_skills('$id')"

finish_checks schemas
