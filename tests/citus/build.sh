#!/usr/bin/env bash
# Builds Citus from its public source once and installs it into Debian's
# PostgreSQL 15. The source (github.com/citusdata/citus, tag v13.2.x, which
# supports PostgreSQL 15) must be unpacked at $CITUS_SRC (default
# ~/.cache/mcp_oauth-src/citus); the build is staged in $TOOLS_DIR/citus-<version>
# and only copied into PostgreSQL on later runs. About 6 minutes on 2 cores
# the first time, seconds after.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

CITUS_SRC=${CITUS_SRC:-$HOME/.cache/mcp_oauth-src/citus}
[ -f "$CITUS_SRC/configure" ] || {
  echo "no Citus source at $CITUS_SRC (unpack github.com/citusdata/citus at tag v13.2.2 there, or set CITUS_SRC)" >&2
  exit 2
}
version=$(sed -n "s/^PACKAGE_VERSION='\(.*\)'/\1/p" "$CITUS_SRC/configure")
case $version in 13.2*) ;; *) echo "Citus $version at $CITUS_SRC: this test wants 13.2 (PostgreSQL 15)" >&2; exit 2 ;; esac
stage="$TOOLS_DIR/citus-$version"

as=()
[ "$(id -u)" -eq 0 ] || as=(sudo)

if [ ! -f "$stage/.built" ]; then
  # Columnar compresses with lz4 and zstd; libpq-be.h includes gssapi.h.
  # Their headers come from Debian.
  missing=()
  for p in liblz4-dev libzstd-dev libkrb5-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    "${as[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  say "building Citus $version (once; staged in $stage)"
  build=$(mktemp -d "${TMPDIR:-/tmp}/citus-build.XXXXXX")
  cp -a "$CITUS_SRC/." "$build/"
  # Recent PostgreSQL 15 minor releases (15.20 here) export
  # have_createdb_privilege(), which Citus 13.2 defines as a static copy for
  # 15: use the server's one where its header declares it.
  if grep -q 'extern bool have_createdb_privilege' "$("$PG_CONFIG" --includedir-server)/commands/dbcommands.h"; then
    perl -0pi -e 's/static inline bool\nhave_createdb_privilege\(void\)/static inline bool\ncitus_unused_have_createdb_privilege(void)/' \
      "$build/src/include/pg_version_compat.h"
    sed -i '0,/^#include "postgres.h"/s//#include "postgres.h"\n#include "commands\/dbcommands.h"/' \
      "$build/src/backend/distributed/commands/serialize_distributed_ddls.c"
  fi
  (
    cd "$build"
    # No anonymous statistics (and no network from a test machine).
    ./configure PG_CONFIG="$PG_CONFIG" --without-libcurl >configure.log
    make -s -j"$(nproc)" >make.log 2>&1 || { tail -40 make.log; exit 1; }
    rm -rf "$stage"
    make -s install DESTDIR="$stage" >install.log
  )
  rm -rf "$build"
  touch "$stage/.built"
fi

# Copy the staged files into PostgreSQL (idempotent).
"${as[@]}" cp -a "$stage/usr/." /usr/
echo "Citus $version installed into $("$PG_CONFIG" --pkglibdir)"
