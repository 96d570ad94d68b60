#!/usr/bin/env bash
# Runs the official MCP conformance suite against mcp_oauth: a throwaway
# cluster, and client.sh as the suite's client. Usage: run.sh [RUN...],
# where RUN is
#   SUITE            a suite of @modelcontextprotocol/conformance 0.1.16
#                    (auth, backcompat, draft) or one scenario of it (a/b);
#   next:REVISION    every scenario the current release (0.2.0-alpha.12)
#                    requires of a client for that revision (2025-11-25,
#                    2026-07-28);
#   next:SCENARIO    one scenario of the current release;
#   next-suite:NAME  a suite of the current release (all: every client
#                    scenario, extensions included).
# Default: auth. Every run must pass with no FAILURE, and no WARNING that
# expected-failures.yml does not list with its reason. Because the suite
# ignores the client's exit status, the client logs each run's outcome and
# this script checks it: a positive scenario's client exits 0, a negative
# one's is refused with the SQLSTATE listed in expected-outcomes.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../lib.sh"
node_bin=$NODE22_BIN
cli="$TOOLS_DIR/conformance/node_modules/@modelcontextprotocol/conformance/dist/index.js"
next_cli="$TOOLS_DIR/conformance-next/node_modules/@modelcontextprotocol/conformance/dist/index.js"
[ -x "$node_bin/node" ] && [ -f "$cli" ] && [ -f "$next_cli" ] || { echo "run scripts/setup.sh first (Node 22 and the conformance suites)"; exit 2; }

runs=("$@")
[ ${#runs[@]} -gt 0 ] || runs=(auth)

dir=$(scratch_dir)
trap 'stop_cluster "$dir"; [ -n "${KEEP:-}" ] || rm -rf "$dir"' EXIT
start_cluster "$dir"
dev_settings
# The suite's own redirect URI and client metadata document.
psql_q <<'SQL' >/dev/null
ALTER SYSTEM SET mcp_oauth.redirect_uri = 'http://localhost:3000/callback';
ALTER SYSTEM SET mcp_oauth.client_metadata_url = 'https://conformance-test.local/client-metadata.json';
SELECT pg_reload_conf();
CREATE EXTENSION mcp_oauth;
SQL
app_roles conformance
export PGUSER=conformance

# What each negative scenario's client must be refused with.
declare -A refused_with
while read -r name state _; do
  [[ -z $name || $name == \#* ]] || refused_with[$name]=$state
done <"$here/expected-outcomes"

# check_outcomes RUNNER_LOG: every client run ended as expected.
check_outcomes() {
  local ok=0 scenario result sqlstate expected
  [ -s "$1" ] || { echo "no client ran"; return 1; }
  while read -r scenario result sqlstate; do
    expected=${refused_with[$scenario]:-}
    if [ "$expected" = skip ]; then
      continue
    elif [ -n "$expected" ]; then
      if [ "$result" = exit=0 ] || [ "$sqlstate" != "sqlstate=$expected" ]; then
        echo "outcome: $scenario should be refused with $expected, got $result $sqlstate"
        ok=1
      fi
    elif [ "$result" != exit=0 ]; then
      echo "outcome: $scenario's client failed ($result $sqlstate)"
      ok=1
    fi
  done <"$1"
  echo "outcomes: $(wc -l <"$1") client runs checked"
  return "$ok"
}

# ran RUN: the scenarios of RUN that left results.
ran() {
  local results="$dir/results/${1//[\/:]/_}" checks scenario
  [ -d "$results" ] || return 0
  find "$results" -name checks.json | while IFS= read -r checks; do
    scenario=${checks#"$results"/}
    scenario=${scenario%/checks.json}
    echo "${scenario%-20[0-9][0-9]-*}"
  done | sort -u
}

# check_scenarios RUN: every scenario expected-scenarios lists for RUN ran,
# and its client was started; a check that counts failures cannot pass for
# a scenario that never ran.
check_scenarios() {
  local run=$1 ok=0 scenario found clients
  found=$(ran "$run")
  clients=$(cut -d' ' -f1 "$MCP_OAUTH_RUNNER_LOG" | sort -u)
  while read -r r scenario; do
    [ "$r" = "$run" ] || continue
    grep -qxF "$scenario" <<<"$found" || { echo "scenario: $scenario of $run left no results"; ok=1; }
    grep -qxF "$scenario" <<<"$clients" || { echo "scenario: $scenario of $run never started the client"; ok=1; }
  done < <(grep -v '^#' "$here/expected-scenarios")
  grep -q "^$run " "$here/expected-scenarios" || { echo "scenario: expected-scenarios lists nothing for $run"; ok=1; }
  echo "scenarios: $(grep -c "^$run " "$here/expected-scenarios") expected, $(grep -c . <<<"$found") ran"
  return "$ok"
}

# explain RUN: every FAILURE and WARNING of a scenario the baseline does
# not expect to fail, and the end of the client's log for each.
explain() {
  local results="$dir/results/${1//[\/:]/_}" checks scenario
  [ -d "$results" ] || return 0
  while IFS= read -r checks; do
    scenario=${checks#"$results"/}
    scenario=${scenario%/checks.json}
    scenario=${scenario%-20[0-9][0-9]-*}
    grep -qxF "  - $scenario" "$here/expected-failures.yml" && continue
    jq -r --arg s "$scenario" '.[] | select(.status == "FAILURE" or .status == "WARNING")
      | "\($s): \(.status) \(.name): \(.errorMessage // .description)"' "$checks" |
      grep . && tail -8 "$(dirname "$checks")/stderr.txt" | sed 's/^/    /'
  done < <(find "$results" -name checks.json | sort)
}

status=0
: >"$dir/why"
for run in "${runs[@]}"; do
  say "conformance: $run"
  log="$dir/${run//[\/:]/_}.log"
  export MCP_OAUTH_RUNNER_LOG="$dir/${run//[\/:]/_}.outcomes"
  : >"$MCP_OAUTH_RUNNER_LOG"
  case "$run" in
    next:20*) args=("$next_cli" client --requirements "${run#next:}") ;;
    next-suite:*) args=("$next_cli" client --suite "${run#next-suite:}") ;;
    next:*) args=("$next_cli" client --scenario "${run#next:}") ;;
    */*) args=("$cli" client --scenario "$run") ;;
    *) args=("$cli" client --suite "$run") ;;
  esac
  (cd "$dir" && PATH="$node_bin:$PATH" node "${args[@]}" \
      --command "bash $here/client.sh" \
      --timeout 60000 --output-dir "$dir/results/${run//[\/:]/_}" \
      --expected-failures "$here/expected-failures.yml") >"$log" 2>&1
  code=$?
  # The summary, without the per-check noise.
  grep -E "^(Running|✓|✗|⚠|Total|Passed|Failed|Warnings|.*scenarios?)|FAIL|WARN|passed|failed" "$log" | tail -60
  if [ "$code" -ne 0 ]; then
    echo "conformance $run failed (exit $code)" >>"$dir/why"
    [ -d "$dir/results" ] || tail -40 "$log" >>"$dir/why"
    status=1
  fi
  check_outcomes "$MCP_OAUTH_RUNNER_LOG" >"$dir/outcomes" || { grep '^outcome:' "$dir/outcomes" >>"$dir/why"; status=1; }
  tail -1 "$dir/outcomes"
  check_scenarios "$run" >"$dir/scenarios" || { grep '^scenario:' "$dir/scenarios" >>"$dir/why"; status=1; }
  tail -1 "$dir/scenarios"
  explain "$run" >>"$dir/why"
done

# The suites run their scenarios in parallel, so under load every sign-in
# and failure state must still reach a background worker (one waits for a
# free slot) rather than fall back to the caller's transaction, which the
# ERROR of a step-up rolls back.
if grep -q "current transaction only" "$dir/server.log"; then
  echo "some writes fell back to the caller's transaction (no worker slot came free):" >>"$dir/why"
  grep "current transaction only" "$dir/server.log" | head -3 >>"$dir/why"
  status=1
fi

# Why, last, where a CI log's tail shows it.
if [ -s "$dir/why" ]; then
  echo
  echo "conformance failures:"
  cat "$dir/why"
fi
exit "$status"
