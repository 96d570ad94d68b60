#!/usr/bin/env bash
# Instructions per warm call of the installed build, and how many of them
# count the call in mcp_oauth_stats (callgrind; deterministic, unlike
# timings). A single-user backend runs 1 and 201 calls of a headers-mode
# row as an application role; the difference is 200 warm calls.
#
#   bash benches/instructions.sh [VERSION]   # VERSION: the schema to install (default: the current)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../tests/lib.sh"
command -v valgrind >/dev/null || { echo "valgrind is needed"; exit 2; }
version=${1:-}
throwaway_cluster
base=$(start_fixture "$dir")
dev_settings
psql_q -c "CREATE EXTENSION mcp_oauth ${version:+VERSION '$version'}" >/dev/null
app_roles alice
behave '{"api_key": "k-1"}' >/dev/null
id=$(as_alice -c "INSERT INTO user_mcp_servers (name, url, headers) VALUES ('Keyed', '$base/mcp', '{\"X-Api-Key\": \"k-1\"}') RETURNING id")
as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
instructions() {  # instructions FILE [VALGRIND OPTIONS]: Ir of a single-user run of FILE
  local file=$1
  shift
  as_pg valgrind --tool=callgrind "$@" --callgrind-out-file=/dev/null "$PG_BIN/postgres" --single -D "$dir/data" postgres <"$file" 2>&1 >/dev/null |
    sed -n 's/.*I *refs: *\([0-9,]*\).*/\1/p' | tr -d ,
}
for n in 1 201; do
  { echo "SET ROLE alice;"; for _ in $(seq $n); do echo "SELECT mcp_call_tool('$id', 'echo', '{\"text\": \"hello\"}');"; done; } >"$dir/calls$n.sql"
  chmod 644 "$dir/calls$n.sql"
done
stats=(--toggle-collect='mcp_oauth::stats::*' --toggle-collect='mcp_oauth_core::stats::*')
per_call=$(( ($(instructions "$dir/calls201.sql") - $(instructions "$dir/calls1.sql")) / 200 ))
per_count=$(( ($(instructions "$dir/calls201.sql" "${stats[@]}") - $(instructions "$dir/calls1.sql" "${stats[@]}")) / 200 ))
echo "instructions per warm call: $per_call"
echo "of which counting it in mcp_oauth_stats: $per_count"
