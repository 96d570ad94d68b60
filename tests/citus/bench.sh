#!/usr/bin/env bash
# Calls per second through a Citus coordinator (and two workers) beside a
# single node, side by side on this machine: the same warm mcp_call_tool
# (headers mode, the loopback fixture) from 1, 2 and 4 pgbench clients over
# loopback TCP, in interleaved rounds. Then what distributing user_mcp_servers would cost
# each call: a read of one row by (user_id, id) on the coordinator's table
# beside the same read of a copy distributed by user_id (a router query to
# a worker). Writes the "Citus" section of BENCHMARKS.md (docs/scaling.md
# quotes it). Not part of the test command.
#
#   bash tests/citus/bench.sh        (ROUNDS=3 SECS=5: about 3 minutes)
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../lib.sh"
source "$here/cluster.sh"
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-5}

bash "$here/build.sh" >/dev/null || exit 1
say "release builds of the extension and the fixture"
install_extension --release >/dev/null 2>&1 || { echo "install failed"; exit 1; }
(cd "$ROOT_DIR" && cargo build -q --release -p mcp_oauth_fixture) || exit 1

work=$(scratch_dir)
single="$work/single"
mkdir -p "$single" && chmod 755 "$single" && { [ "$(id -u)" -ne 0 ] || chown postgres: "$single"; }
trap 'kill $(cat "$work/fixture.pid" 2>/dev/null) 2>/dev/null; stop_cluster "$single"; stop_citus "$work"; rm -rf "$work"' EXIT
"$ROOT_DIR/target/release/mcp-oauth-fixture" 0 >"$work/fixture.out" 2>&1 &
echo $! >"$work/fixture.pid"
for _ in $(seq 50); do [ -s "$work/fixture.out" ] && break; sleep 0.1; done
base=$(head -1 "$work/fixture.out")
KEY=bench-key-0123456789
curl -s -X POST -H 'content-type: application/json' -d "{\"api_key\": \"$KEY\"}" "$base/_fixture/config" >/dev/null

# prepare: the extension, alice and her headers row on the node psql points at.
prepare() {
  psql_q >/dev/null <<SQL
ALTER SYSTEM SET mcp_oauth.allow_http_loopback = on;
SELECT pg_reload_conf();
CREATE EXTENSION mcp_oauth;
CREATE ROLE alice LOGIN;
GRANT mcp_oauth_user TO alice;
SQL
  psql_q -U alice -At -c "INSERT INTO user_mcp_servers (name, url, headers) VALUES ('Bench', '$base/mcp', '{\"X-Api-Key\": \"$KEY\"}') RETURNING id"
}

# The single node is reached over loopback TCP, as the coordinator is.
start_cluster "$single"
single_port=$(free_port)
printf "listen_addresses = '127.0.0.1'\nport = %s\n" "$single_port" >>"$single/data/postgresql.conf"
as_pg "$PG_BIN/pg_ctl" -D "$single/data" -l "$single/server.log" -w restart >/dev/null || exit 1
export PGHOST=127.0.0.1 PGPORT=$single_port
single_env=(PGHOST="$PGHOST" PGPORT="$PGPORT")
single_id=$(prepare)
start_citus "$work" || exit 1
citus_env=(PGHOST="$PGHOST" PGPORT="$PGPORT")
citus_id=$(prepare)
# The same row, distributed by user_id (the layout docs/scaling.md decides
# against): only for the read measurement.
psql_q >/dev/null <<'SQL'
CREATE TABLE servers_distributed AS SELECT * FROM user_mcp_servers;
ALTER TABLE servers_distributed ADD PRIMARY KEY (user_id, id);
SELECT create_distributed_table('servers_distributed', 'user_id');
GRANT SELECT ON servers_distributed TO alice;
SQL

for layout in single citus; do
  id_var=${layout}_id
  echo "SELECT mcp_call_tool('${!id_var}', 'echo', '{\"text\": \"bench\"}');" >"$work/$layout.sql"
done
echo "SELECT 1;" >"$work/select1.sql"
echo "SELECT url FROM user_mcp_servers WHERE user_id = 'alice' AND id = '$citus_id';" >"$work/read_local.sql"
echo "SELECT url FROM servers_distributed WHERE user_id = 'alice' AND id = '$citus_id';" >"$work/read_distributed.sql"
chmod 644 "$work"/*.sql

results="$work/results"
: >"$results"
# run NAME LAYOUT FILE CLIENTS [SSLMODE]: calls/s and p50 µs (pgbench's
# log), as alice. Without TLS unless SSLMODE says otherwise: Citus turns on
# TLS when it is created (the single node has none), and the comparison is
# of the same transport.
run() {
  local name=$1 layout=$2 file=$3 clients=$4 sslmode=${5:-disable} env prefix output tps
  if [ "$layout" = single ]; then env=("${single_env[@]}"); else env=("${citus_env[@]}"); fi
  env+=(PGSSLMODE="$sslmode")
  prefix="$work/log.$name.$RANDOM"
  output=$(cd "$work" && as_pg env "${env[@]}" PGUSER=alice "$PG_BIN/pgbench" -n -M prepared -c "$clients" \
    -j "$((clients < 2 ? clients : 2))" -T "$SECS" -f "$work/$file.sql" -l --log-prefix="$prefix" postgres 2>&1)
  tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$output" | head -1)
  [ -n "$tps" ] || { echo "pgbench failed: $output" >&2; exit 1; }
  echo "$name.rate $tps" >>"$results"
  echo "$name.p50 $(cat "$prefix".* | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')" >>"$results"
  rm -f "$prefix".*
}

# Warm every backend path once, then check both layouts answer.
for layout in single citus; do
  if [ "$layout" = single ]; then env=("${single_env[@]}"); else env=("${citus_env[@]}"); fi
  out=$(env "${env[@]}" "$PG_BIN/psql" -X -At -U alice -d postgres -f "$work/$layout.sql")
  grep -q '"bench"' <<<"$out" || { echo "$layout: the call failed: $out"; exit 1; }
done

steps=()
for clients in 1 2 4; do
  steps+=("run single.c$clients single single $clients" "run citus.c$clients citus citus $clients")
done
steps+=("run citus_tls.c1 citus citus 1 require")
steps+=("run select1_single.c1 single select1 1" "run select1_citus.c1 citus select1 1")
steps+=("run read_local.c1 citus read_local 1" "run read_distributed.c1 citus read_distributed 1")
say "$ROUNDS interleaved rounds of ${#steps[@]} runs of $SECS s"
for round in $(seq 0 $((ROUNDS - 1))); do
  for i in $(seq 0 $((${#steps[@]} - 1))); do
    # shellcheck disable=SC2086
    ${steps[$(( (i + round) % ${#steps[@]} ))]}
  done
done

median() { grep "^$1 " "$results" | awk '{print $2}' | sort -n | awk '{a[NR]=$1} END {printf "%.0f", a[int((NR+1)/2)]}'; }
range() { grep "^$1 " "$results" | awk '{print $2}' | sort -n | awk 'NR==1{lo=$1} {hi=$1} END {printf "%.0f–%.0f", lo, hi}'; }

# The "Citus" section of BENCHMARKS.md (BENCH_OUTPUT), replaced in place;
# also printed. docs/scaling.md quotes it.
section=$(
  echo "<!-- citus:begin (written by tests/citus/bench.sh) -->"
  echo "## Citus"
  echo
  echo "Measured by \`bash tests/citus/bench.sh\` on $(date -u +%F) at commit \`$(git -C "$ROOT_DIR" rev-parse --short HEAD)\`$(git -C "$ROOT_DIR" diff --quiet HEAD -- || echo " (with uncommitted changes)"):"
  echo "$(nproc) vCPU, $(free -g | awk '/^Mem:/{print $2}') GiB, PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}'), Citus $(psql_q -At -c "SELECT extversion FROM pg_extension WHERE extname = 'citus'");"
  echo "coordinator, two workers, the single node and the fixture all on this machine; median of $ROUNDS interleaved runs of $SECS s (min–max)."
  echo
  echo "| clients | single node calls/s | p50 µs | through the Citus coordinator calls/s | p50 µs | ratio |"
  echo "|---|---|---|---|---|---|"
  for clients in 1 2 4; do
    s=$(median "single.c$clients.rate") c=$(median "citus.c$clients.rate")
    echo "| $clients | $s ($(range "single.c$clients.rate")) | $(median "single.c$clients.p50") | $c ($(range "citus.c$clients.rate")) | $(median "citus.c$clients.p50") | $(awk -v a="$c" -v b="$s" 'BEGIN {printf "%.2f", a / b}') |"
  done
  echo "| 1, over TLS (Citus's default for clients) | | | $(median citus_tls.c1.rate) ($(range citus_tls.c1.rate)) | $(median citus_tls.c1.p50) | $(awk -v a="$(median citus_tls.c1.rate)" -v b="$(median single.c1.rate)" 'BEGIN {printf "%.2f", a / b}') |"
  echo
  echo "| 1 client, no TLS | statements/s | p50 µs |"
  echo "|---|---|---|"
  echo "| \`SELECT 1\`, single node | $(median select1_single.c1.rate) ($(range select1_single.c1.rate)) | $(median select1_single.c1.p50) |"
  echo "| \`SELECT 1\`, the Citus coordinator | $(median select1_citus.c1.rate) ($(range select1_citus.c1.rate)) | $(median select1_citus.c1.p50) |"
  echo "| one row by (user_id, id) from the coordinator's \`user_mcp_servers\` | $(median read_local.c1.rate) ($(range read_local.c1.rate)) | $(median read_local.c1.p50) |"
  echo "| the same row from a copy distributed by \`user_id\` (a router query to a worker) | $(median read_distributed.c1.rate) ($(range read_distributed.c1.rate)) | $(median read_distributed.c1.p50) |"
  echo "<!-- citus:end -->"
)
out_file=${BENCH_OUTPUT:-$ROOT_DIR/BENCHMARKS.md}
write_section "$out_file" citus "$section"
echo
echo "$section"
