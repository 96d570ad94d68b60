#!/usr/bin/env bash
# The Debian package (scripts/package.sh) installs on the machine's
# PostgreSQL and passes the regression suite with no build tools in PATH;
# an extension at 0.1.0 upgrades to the packaged 0.2.0. Builds the package
# when it is not there or older than the sources.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../lib.sh"

deb=$(ls -t "$ROOT_DIR"/target/debian/postgresql-*-mcp-oauth_*.deb 2>/dev/null | head -1)
newest_source=$(git -C "$ROOT_DIR" log -1 --format=%ct -- src crates/core sql Cargo.toml Cargo.lock mcp_oauth.control 2>/dev/null || echo 0)
if [ -z "$deb" ] || [ "$(stat -c %Y "$deb")" -lt "$newest_source" ]; then
  say "building the package"
  deb=$(bash "$ROOT_DIR/scripts/package.sh") || { echo "package build failed"; exit 1; }
fi
check "the package is built" "\.deb$" "$deb"
check "... named for Debian's PostgreSQL" "^postgresql-$PG_MAJOR-mcp-oauth$" "$(dpkg-deb -f "$deb" Package)"
contents=$(dpkg-deb -c "$deb")
check "... with the library" "$("$PG_CONFIG" --pkglibdir)/mcp_oauth.so$" "$contents"
for file in mcp_oauth.control mcp_oauth--0.2.0.sql mcp_oauth--0.1.0.sql mcp_oauth--0.1.0--0.2.0.sql; do
  check "... with $file" "/extension/$file$" "$contents"
done

# Installed as an administrator would, then used with no toolchain at all.
dpkg -i "$deb" >/dev/null 2>&1 || apt-get install -y -qq "$deb" >/dev/null 2>&1
check "dpkg knows it installed" "^install ok installed" "$(dpkg-query -W -f='${Status}' "postgresql-$PG_MAJOR-mcp-oauth" 2>/dev/null)"
# A PATH of the machine's commands without any build tool: no compiler,
# linker, make, cargo or rustc (pg_regress is PostgreSQL's test driver).
bare=$(mktemp -d)
for tool in /usr/local/bin/* /usr/bin/* /bin/*; do
  name=${tool##*/}
  case $name in
    gcc* | g++* | cc | c++ | c89* | c99* | cpp* | clang* | ld | ld.* | lld* | as | make | cmake | cargo* | rustc* | rustup* | rustdoc | x86_64-linux-gnu-* | aarch64-linux-gnu-*) continue ;;
  esac
  [ -e "$bare/$name" ] || ln -s "$tool" "$bare/$name"
done
found=$(PATH=$bare bash -c 'for t in cargo rustc cc gcc clang make ld; do command -v $t; done')
check "no build tool in that PATH" "^$" "$found"
out=$(PATH=$bare bash "$ROOT_DIR/tests/regress/run.sh" 2>&1)
check "the regression suite passes against the package" "All [0-9]+ tests passed" "$out"
rm -rf "$bare"

# The upgrade from 0.1.0 with the packaged scripts.
throwaway_cluster
psql_q -c "CREATE EXTENSION mcp_oauth VERSION '0.1.0'" -c "ALTER EXTENSION mcp_oauth UPDATE" >/dev/null
check "0.1.0 upgrades to the packaged 0.2.0" "^0.2.0$" "$(psql_q -At -c "SELECT extversion FROM pg_extension WHERE extname = 'mcp_oauth'")"

finish_checks package
