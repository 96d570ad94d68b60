#!/usr/bin/env bash
# Runs the pg_regress suite on a temporary instance (the extension must be
# installed). Usage: run.sh [OUTPUT_DIR]; results stay in OUTPUT_DIR.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../../scripts/lib.sh"
out=${1:-$(scratch_dir)}
mkdir -p "$out" && chmod 777 "$out"
# The instance's settings, with a fresh random encryption key.
new_key_file "$out/encryption.key"
{ cat "$here/regress.conf"; echo "mcp_oauth.encryption_key_file = '$out/encryption.key'"; } >"$out/regress.conf"
status=0
as_pg "$(dirname "$(dirname "$PG_CONFIG")")/lib/pgxs/src/test/regress/pg_regress" \
  --bindir="$PG_BIN" \
  --temp-instance="$out/instance" \
  --temp-config="$out/regress.conf" \
  --inputdir="$here" \
  --outputdir="$out" \
  --schedule="$here/schedule" \
  --dbname=mcp_oauth_regress \
  --no-locale || status=$?
if [ "$status" -ne 0 ] && [ -f "$out/regression.diffs" ]; then
  cat "$out/regression.diffs"
  echo "pg_regress output kept in $out/results"
fi
exit "$status"
