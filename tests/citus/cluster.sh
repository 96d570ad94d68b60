# A Citus cluster on this machine for tests/citus: source it after
# tests/lib.sh. start_citus DIR starts a coordinator and two workers on
# free loopback ports (port[coordinator], port[worker1], port[worker2]),
# with mcp_oauth preloaded everywhere and the encryption key on the
# coordinator only, and points psql at the coordinator. stop_citus DIR
# stops them.
nodes=(coordinator worker1 worker2)
declare -A port

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

start_citus() {
  local dir=$1 node
  new_key_file "$dir/encryption.key"
  for node in "${nodes[@]}"; do
    port[$node]=$(free_port)
    mkdir -p "$dir/$node" && chmod 755 "$dir/$node"
    [ "$(id -u)" -ne 0 ] || chown postgres: "$dir/$node"
    as_pg "$PG_BIN/initdb" -D "$dir/$node/data" -U postgres --auth=trust --no-instructions -E UTF8 --locale=C.UTF-8 >"$dir/$node/initdb.log" || return 1
    cat >>"$dir/$node/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = ${port[$node]}
unix_socket_directories = '$dir/$node'
shared_preload_libraries = 'citus, mcp_oauth'
fsync = off
CONF
    [ "$node" = coordinator ] && echo "mcp_oauth.encryption_key_file = '$dir/encryption.key'" >>"$dir/$node/data/postgresql.conf"
    as_pg "$PG_BIN/pg_ctl" -D "$dir/$node/data" -l "$dir/$node/server.log" -w start >/dev/null ||
      { cat "$dir/$node/server.log"; return 1; }
    psql_q -h 127.0.0.1 -p "${port[$node]}" -U postgres -d postgres -c "CREATE EXTENSION citus" >/dev/null || return 1
  done
  export PGHOST=127.0.0.1 PGPORT=${port[coordinator]} PGUSER=postgres PGDATABASE=postgres
  psql_q >/dev/null <<SQL
SELECT citus_set_coordinator_host('127.0.0.1', ${port[coordinator]});
SELECT citus_add_node('127.0.0.1', ${port[worker1]});
SELECT citus_add_node('127.0.0.1', ${port[worker2]});
SQL
}

stop_citus() {
  local node
  for node in "${nodes[@]}"; do
    [ -d "$1/$node/data" ] && as_pg "$PG_BIN/pg_ctl" -D "$1/$node/data" -m fast -w stop >/dev/null 2>&1
  done
  return 0
}

on_worker() { psql_q -At -p "${port[$1]}" -c "$2"; }
