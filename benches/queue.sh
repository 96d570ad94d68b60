#!/usr/bin/env bash
# The durable call queue, measured: throughput against a server that answers
# after 200 ms, side by side with pg_net on the same server and the same
# number of requests; the cost of an enqueue beside a plain INSERT of the
# same row; a queue worker's memory over many calls. Writes the "call
# queue" section of BENCHMARKS.md. Not part of the test command.
#
#   bash benches/queue.sh            # the full run (a few minutes)
#   bash benches/queue.sh --quick    # a smoke run
#
# pg_net is built from its public source (github.com/supabase/pg_net),
# which must be unpacked at $PG_NET_SRC (default ~/.cache/mcp_oauth-src/pg_net);
# without it the comparison is left out, and said so. It needs libcurl's
# headers (Debian's libcurl4-openssl-dev, installed here when missing).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$ROOT_DIR"
command_line="bash benches/queue.sh $*"

CALLS=${BENCH_QUEUE_CALLS:-2000}
DELAY_MS=${BENCH_QUEUE_DELAY_MS:-200}
REPS=${BENCH_REPS:-3}
ENQUEUE_ROWS=${BENCH_ENQUEUE_ROWS:-20000}
MEMORY_CALLS=${BENCH_MEMORY_CALLS:-100000}
if [ "${1:-}" = "--quick" ]; then
  CALLS=400 REPS=1 ENQUEUE_ROWS=2000 MEMORY_CALLS=5000
fi
PG_NET_SRC=${PG_NET_SRC:-$HOME/.cache/mcp_oauth-src/pg_net}
out_file=${BENCH_OUTPUT:-$ROOT_DIR/BENCHMARKS.md}

bash scripts/setup.sh >/dev/null
say "building (release)"
install_extension --release >/dev/null 2>&1
cargo build --release -q -p mcp_oauth_fixture

pg_net=""
if [ -f "$PG_NET_SRC/Makefile" ]; then
  dpkg -s libcurl4-openssl-dev >/dev/null 2>&1 || apt-get install -y -q libcurl4-openssl-dev >/dev/null
  say "building pg_net from $PG_NET_SRC"
  (cd "$PG_NET_SRC" && make -s PG_CONFIG="$PG_BIN/pg_config" >/dev/null && make -s PG_CONFIG="$PG_BIN/pg_config" install >/dev/null)
  pg_net=$(sed -n 's/^EXTVERSION = //p' "$PG_NET_SRC/Makefile")
fi

dir=$(scratch_dir)
trap 'stop_fixtures "$dir"; stop_cluster "$dir"; rm -rf "$dir"' EXIT
start_cluster "$dir"
cat >>"$dir/data/postgresql.conf" <<CONF
shared_preload_libraries = 'mcp_oauth${pg_net:+, pg_net}'
mcp_oauth.state_secret = 'bench-state-secret-0123456789abcdef0123'
mcp_oauth.allow_http_loopback = on
mcp_oauth.max_calls_per_server = 10000
CONF
echo "mcp_oauth.call_workers = 2" >"$dir/data/workers.conf"
echo "include 'workers.conf'" >>"$dir/data/postgresql.conf"
as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w restart >/dev/null
"$ROOT_DIR/target/release/mcp-oauth-fixture" 0 >"$dir/fixture.out" 2>&1 &
echo $! >"$dir/fixture.pid"
for _ in $(seq 50); do [ -s "$dir/fixture.out" ] && break; sleep 0.1; done
base=$(head -1 "$dir/fixture.out")
behave() { curl -s -X POST -H 'content-type: application/json' -d "${1:-{\}}" "$base/_fixture/config"; }
stat() { curl -s "$base/_fixture/stats" | jq -r ".$1"; }
KEY=bench-key-0123456789
behave "{\"api_key\": \"$KEY\"}"
psql_q -c "CREATE EXTENSION mcp_oauth" >/dev/null
[ -n "$pg_net" ] && psql_q -c "CREATE EXTENSION pg_net" >/dev/null
server=$(psql_q -At -c "INSERT INTO user_mcp_servers (name, url, headers) VALUES ('bench', '$base/mcp', '{\"X-Api-Key\": \"$KEY\"}') RETURNING id")
psql_q -At -c "SELECT mcp_call_tool('$server', 'echo', '{\"text\": \"warm\"}')" >/dev/null

set_cap() { psql_q -c "ALTER SYSTEM SET mcp_oauth.max_calls_in_flight = $1" -c "SELECT pg_reload_conf()" >/dev/null; sleep 0.5; }
now_ms() { date +%s%3N; }
# wait_done SQL N: waits until SQL counts N, prints the milliseconds it took.
wait_done() {
  local started=$1 sql=$2 n=$3
  while [ "$(psql_q -At -c "$sql")" -lt "$n" ]; do sleep 0.02; done
  echo $(( $(now_ms) - started ))
}
rate() { awk -v n="$1" -v ms="$2" 'BEGIN { printf "%.0f", n * 1000 / ms }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# Our queue: CALLS calls committed at once, until every one has finished.
queue_run() {
  local before started
  before=$(psql_q -At -c "SELECT coalesce(max(id), 0) FROM mcp_tool_calls")
  psql_q -c "SELECT count(mcp_call_tool_async('$server', 'echo', jsonb_build_object('text', 'q' || i))) FROM generate_series(1, $CALLS) i" >/dev/null
  started=$(now_ms)
  wait_done "$started" "SELECT count(*) FROM mcp_tool_calls WHERE id > $before AND status = 'succeeded'" "$CALLS"
}

# pg_net: the same requests (the same MCP tools/call, headers and body) to
# the same server, until every response is stored.
meta='{"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientInfo": {"name": "pg_net", "version": "1"}, "io.modelcontextprotocol/clientCapabilities": {}}'
pg_net_run() {
  local before started
  before=$(psql_q -At -c "SELECT coalesce(max(id), 0) FROM net._http_response")
  psql_q >/dev/null <<SQL
SELECT count(net.http_post(
    url := '$base/mcp',
    body := jsonb_build_object('jsonrpc', '2.0', 'id', i, 'method', 'tools/call',
              'params', jsonb_build_object('name', 'echo', 'arguments', jsonb_build_object('text', 'n' || i), '_meta', '$meta'::jsonb)),
    headers := '{"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
                 "Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "echo", "X-Api-Key": "$KEY"}'::jsonb,
    timeout_milliseconds := 60000))
  FROM generate_series(1, $CALLS) i;
SQL
  started=$(now_ms)
  wait_done "$started" "SELECT count(*) FROM net._http_response WHERE id > $before" "$CALLS"
}

behave "{\"api_key\": \"$KEY\", \"mcp_delay_ms\": $DELAY_MS}"
declare -A results
# Parallel calls in one statement: ten calls to the same server, each
# answered after DELAY_MS, in one mcp_call_tools (pgbench's average latency
# per statement, the first of each backend excluded by a warm-up).
ten="[$(for i in $(seq 10); do [ "$i" -gt 1 ] && printf ','; printf '{"server_id": "%s", "name": "echo", "arguments": {"text": "p%s"}}' "$server" "$i"; done)]"
mkdir -p "$dir/bench" && chmod 777 "$dir/bench"
echo "SELECT jsonb_array_length(mcp_call_tools('$ten'));" >"$dir/bench/ten.sql"
psql_q -At -c "SELECT jsonb_array_length(mcp_call_tools('$ten'))" >/dev/null
for _ in $(seq "$REPS"); do
  results[ten]+="$(as_pg "$PG_BIN/pgbench" -h "$dir" -p 5432 -U postgres -n -c 1 -t 20 -f "$dir/bench/ten.sql" postgres 2>/dev/null |
    sed -n 's/^latency average = \([0-9.]*\) ms/\1/p') "
done
for cap in 100 200; do
  set_cap "$cap"
  for _ in $(seq "$REPS"); do
    results[queue.$cap]+="$(queue_run) "
  done
done
if [ -n "$pg_net" ]; then
  # Side by side at an equal worker count: one queue worker, and pg_net's
  # one worker; the queue's cap at pg_net's batch size.
  echo "mcp_oauth.call_workers = 1" >"$dir/data/workers.conf"
  as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w restart >/dev/null
  set_cap 200
  behave "{\"api_key\": \"$KEY\", \"mcp_delay_ms\": $DELAY_MS}"
  for _ in $(seq "$REPS"); do
    results[one.queue]+="$(queue_run) "
    results[pg_net]+="$(pg_net_run) "
  done
  echo "mcp_oauth.call_workers = 2" >"$dir/data/workers.conf"
  as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w restart >/dev/null
  pg_net_ok=$(psql_q -At -c "SELECT count(*) FILTER (WHERE status_code = 200) || ' of ' || count(*) FROM net._http_response")
fi
behave "{\"api_key\": \"$KEY\"}"

# The cost of an enqueue: row by row, one transaction each (pgbench), beside
# a plain INSERT of the same row into a table like mcp_tool_calls. The
# server hangs and the workers are full, so they stay idle meanwhile.
psql_q >/dev/null <<SQL
CREATE TABLE bench_plain (LIKE mcp_tool_calls INCLUDING DEFAULTS INCLUDING INDEXES);
ALTER TABLE bench_plain ALTER COLUMN id SET DEFAULT nextval('mcp_tool_calls_id_seq');
SQL
set_cap 1
behave "{\"api_key\": \"$KEY\", \"hang\": true}"
psql_q -At -c "SELECT mcp_call_tool_async('$server', 'echo')" >/dev/null
sleep 1
work="$dir/bench"
echo "SELECT mcp_call_tool_async('$server', 'echo', '{\"text\": \"enqueued\"}');" >"$work/enqueue.sql"
echo "INSERT INTO bench_plain (user_id, server_id, name, arguments) VALUES ('postgres', '$server', 'echo', '{\"text\": \"enqueued\"}');" >"$work/insert.sql"
pgbench_rate() {
  as_pg "$PG_BIN/pgbench" -h "$dir" -p 5432 -U postgres -n -c 1 -t "$ENQUEUE_ROWS" -f "$work/$1.sql" postgres 2>/dev/null |
    sed -n 's/^tps = \([0-9.]*\).*/\1/p'
}
for _ in $(seq "$REPS"); do
  results[enqueue]+="$(pgbench_rate enqueue) "
  results[insert]+="$(pgbench_rate insert) "
done
psql_q -c "UPDATE mcp_tool_calls SET status = 'cancelled', finished_at = now() WHERE status IN ('queued', 'running')" >/dev/null
behave "{\"api_key\": \"$KEY\"}"
as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w restart >/dev/null
set_cap 100

# A queue worker's memory over many calls (answered at once).
# Its private memory (RssAnon) and the shared memory it has touched
# (RssShmem: shared buffers, which grow with the table it reads): the
# busier worker's, in kB.
worker_rss() {
  psql_q -At -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'mcp_oauth queue worker'" |
    while read -r pid; do awk '/^RssAnon/ { a = $2 } /^RssShmem/ { s = $2 } END { print a, s }' "/proc/$pid/status"; done | sort -n | tail -1
}
memory_batch() {
  local before
  before=$(psql_q -At -c "SELECT coalesce(max(id), 0) FROM mcp_tool_calls")
  psql_q -c "SELECT count(mcp_call_tool_async('$server', 'echo', jsonb_build_object('text', 'm' || i))) FROM generate_series(1, $1) i" >/dev/null
  wait_done "$(now_ms)" "SELECT count(*) FROM mcp_tool_calls WHERE id > $before AND status = 'succeeded'" "$1" >/dev/null
}
first=$(( MEMORY_CALLS / 10 ))
memory_batch "$first"
rss_first=$(worker_rss)
memory_started=$(now_ms)
for _ in $(seq 9); do memory_batch "$first"; done
memory_ms=$(( $(now_ms) - memory_started ))
rss_last=$(worker_rss)

say "writing $out_file"
ms_of() { tr ' ' '\n' <<<"${results[$1]}" | grep . | median; }
q100=$(ms_of queue.100) q200=$(ms_of queue.200)
ideal100=$(( 100 * 1000 / DELAY_MS )) ideal200=$(( 200 * 1000 / DELAY_MS ))
rate100=$(rate "$CALLS" "$q100") rate200=$(rate "$CALLS" "$q200")
enqueue=$(tr ' ' '\n' <<<"${results[enqueue]}" | grep . | median)
insert=$(tr ' ' '\n' <<<"${results[insert]}" | grep . | median)
section=$(
  echo "<!-- queue:begin (written by benches/queue.sh) -->"
  echo "## The call queue"
  echo
  echo "Measured by \`$command_line\` on $(date -u +%Y-%m-%d) at commit \`$(git rev-parse --short HEAD)\`;"
  echo "the machine and builds as above (release, preloaded), \`mcp_oauth.call_workers = 2\`."
  echo "The server is the loopback fixture answering every MCP request after $DELAY_MS ms. $CALLS calls are"
  echo "committed at once; the time runs from the commit to the last result stored (median of $REPS). The target applies at"
  echo "the default cap; at a higher cap the fixed cost of each call's two short transactions in the"
  echo "workers weighs more (batching them is the next step)."
  echo
  echo "| measurement | time (ms) | calls/s | target |"
  echo "|---|---|---|---|"
  echo "| queue, \`max_calls_in_flight = 100\` | $q100 | $rate100 | ≥ 80% of 100 ÷ ${DELAY_MS} ms = $(( ideal100 * 8 / 10 ))/s: $(awk -v r="$rate100" -v i="$ideal100" 'BEGIN { print (r >= 0.8 * i ? "met" : "not met") }') ($(awk -v r="$rate100" -v i="$ideal100" 'BEGIN { printf "%.0f%%", 100 * r / i }')) |"
  echo "| queue, \`max_calls_in_flight = 200\` | $q200 | $rate200 | (no target: the cap above the default) $(awk -v r="$rate200" -v i="$ideal200" 'BEGIN { printf "%.0f%%", 100 * r / i }') of 200 ÷ ${DELAY_MS} ms |"
  if [ -n "$pg_net" ]; then
    pn=$(ms_of pg_net) one=$(ms_of one.queue)
    pnrate=$(rate "$CALLS" "$pn") onerate=$(rate "$CALLS" "$one")
    echo
    echo "Side by side with pg_net $pg_net, one worker each (\`mcp_oauth.call_workers = 1\`, the queue's cap at 200, pg_net's"
    echo "\`batch_size\` 200), the same $CALLS requests (the same MCP \`tools/call\`, headers and body) to the same server,"
    echo "in alternating runs:"
    echo
    echo "| measurement | time (ms) | calls/s |"
    echo "|---|---|---|"
    echo "| queue, one worker | $one | $onerate |"
    echo "| pg_net, one worker | $pn | $pnrate |"
    echo
    echo "Queue ÷ pg_net: $(awk -v a="$onerate" -v b="$pnrate" 'BEGIN { printf "%.2f", a / b }')× (target ≥ 2×: $(awk -v a="$onerate" -v b="$pnrate" 'BEGIN { print (a >= 2 * b ? "met" : "not met") }')). pg_net's responses: $pg_net_ok with status 200."
  else
    echo
    echo "pg_net was not measured: its source was not found at \`\$PG_NET_SRC\`."
  fi
  echo
  ten_ms=$(tr ' ' '\n' <<<"${results[ten]}" | grep . | median)
  echo "Ten calls in one \`mcp_call_tools\`, each answered after $DELAY_MS ms (pgbench, 20 statements, median of $REPS averages):"
  echo "$ten_ms ms per statement (target: about $DELAY_MS ms, not $(( 10 * DELAY_MS )): $(awk -v t="$ten_ms" -v d="$DELAY_MS" 'BEGIN { print (t < 1.5 * d ? "met" : "not met") }'))."
  echo
  echo "| enqueue, one per transaction (pgbench, 1 client, $ENQUEUE_ROWS transactions) | tps (median of $REPS) |"
  echo "|---|---|"
  echo "| \`SELECT mcp_call_tool_async(...)\` | $enqueue |"
  echo "| \`INSERT\` of the same row into a copy of \`mcp_tool_calls\` | $insert |"
  echo
  echo "Enqueue ÷ INSERT time per row: $(awk -v e="$enqueue" -v i="$insert" 'BEGIN { printf "%.2f", i / e }')× (target ≤ 2×)."
  echo
  echo "Memory of the busier queue worker (its private memory, RssAnon; then the shared buffers it has touched, RssShmem,"
  echo "which grow with the table, not with the worker): after $first calls ${rss_first% *} kB and ${rss_first#* } kB; after"
  echo "$MEMORY_CALLS calls ${rss_last% *} kB and ${rss_last#* } kB (the last $(( MEMORY_CALLS - first )) calls in $memory_ms ms, answered at once)."
  echo "Target: private memory flat (within 10%): $(awk -v a="${rss_first% *}" -v b="${rss_last% *}" 'BEGIN { print (b <= a * 1.1 ? "met" : "not met") }')."
  echo "<!-- queue:end -->"
)
write_section "$out_file" queue "$section"
echo "$section"
