#!/usr/bin/env bash
# docs/reference.md against the installed catalog, both ways: every
# function of the extension, every column of its table and views, every
# mcp_oauth.* setting, and every SQLSTATE the code can raise has its entry,
# and no entry names something that is not there.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../lib.sh"
doc="$here/../../docs/reference.md"

throwaway_cluster
psql_q -c "CREATE EXTENSION mcp_oauth" >/dev/null

# same WHAT CATALOG DOCUMENTED: the two sorted lists are equal.
same() {
  local missing extra
  missing=$(comm -23 <(sort -u <<<"$2") <(sort -u <<<"$3") | grep . | paste -sd' ')
  extra=$(comm -13 <(sort -u <<<"$2") <(sort -u <<<"$3") | grep . | paste -sd' ')
  check "$1: none undocumented" "^$" "$missing"
  check "$1: none documented that is not there" "^$" "$extra"
  check "$1: the catalog has some" "." "$2"
}

functions=$(psql_q -At -c "SELECT p.oid::regprocedure::text FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
  WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'mcp_oauth') AND d.deptype = 'e' AND d.classid = 'pg_proc'::regclass")
documented=$(sed -n 's/^#### `\(.*\)`$/\1/p' "$doc" | tr -d ' ')
same "functions" "$functions" "$documented"

columns=$(psql_q -At -c "SELECT c.relname || '.' || a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
  WHERE c.relname IN ('user_mcp_servers', 'mcp_servers', 'mcp_tool_calls', 'mcp_calls', 'mcp_oauth_stats')
    AND c.relnamespace = 'public'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped")
documented=$(sed -n 's/^| `\(\(user_mcp_servers\|mcp_servers\|mcp_tool_calls\|mcp_calls\|mcp_oauth_stats\)\.[a-z0-9_]*\)` |.*/\1/p' "$doc")
same "columns of the table and views" "$columns" "$documented"

settings=$(psql_q -At -c "SELECT name FROM pg_settings WHERE name LIKE 'mcp\_oauth.%'")
documented=$(sed -n 's/^| `\(mcp_oauth\.[a-z0-9_]*\)` |.*/\1/p' "$doc")
same "settings" "$settings" "$documented"

# The SQLSTATEs the code can raise: the extension's mapping, and the
# conditions its SQL raises by name.
raised=$( (sed -n 's/^ *pub const [A-Z_]*: &str = "\([0-9A-Z]\{5\}\)";/\1/p' "$here/../../src/error/report.rs"
  grep -o "ERRCODE = '[a-z_]*'" "$here/../../sql/schema.sql" | sort -u | sed "s/ERRCODE = '\(.*\)'/\1/" | while read -r name; do
    case $name in
      check_violation) echo 23514 ;; not_null_violation) echo 23502 ;; feature_not_supported) echo 0A000 ;;
      invalid_parameter_value) echo 22023 ;; undefined_column) echo 42703 ;; *) echo "unmapped:$name" ;;
    esac
  done) | sort -u)
documented=$(sed -n 's/^| `\([0-9A-Z]\{5\}\)` |.*/\1/p' "$doc")
same "SQLSTATEs" "$raised" "$documented"

check "the sequence diagram is there" '^```mermaid$' "$(grep -x '```mermaid' "$doc")"

finish_checks reference
