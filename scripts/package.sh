#!/usr/bin/env bash
# Builds the Debian package of mcp_oauth for Debian's PostgreSQL 15:
# `cargo pgrx package` (release build, the library and the generated install
# script), the hand-written upgrade scripts and the 0.1.0 install script
# beside them, then `dpkg-deb`. Prints the package's path:
#   target/debian/postgresql-15-mcp-oauth_<version>_<arch>.deb
# Install it with `apt install ./that.deb` (or `dpkg -i`); it needs no Rust
# toolchain. See the README, "Installing".
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT_DIR"

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
arch=$(dpkg --print-architecture)
stage="$ROOT_DIR/target/debian/stage"
deb="$ROOT_DIR/target/debian/postgresql-${PG_MAJOR}-mcp-oauth_${version}_${arch}.deb"
rm -rf "$stage"
mkdir -p "$stage"
cargo pgrx package --pg-config "$PG_CONFIG" --out-dir "$stage" >&2
extension_dir="$stage$("$PG_CONFIG" --sharedir)/extension"
[ -f "$extension_dir/mcp_oauth--${version}.sql" ] || { echo "cargo pgrx package wrote no install script" >&2; exit 1; }
# Upgrades from every earlier release, and the earlier releases' own
# install scripts (so that a package of 0.2.0 can also install 0.1.0 and
# upgrade it, as tests/upgrade does).
install -m 644 sql/mcp_oauth--*.sql "$extension_dir/"

mkdir -p "$stage/DEBIAN"
cat >"$stage/DEBIAN/control" <<CONTROL
Package: postgresql-${PG_MAJOR}-mcp-oauth
Version: ${version}
Architecture: ${arch}
Maintainer: mcp_oauth maintainers <mcp-oauth@invalid>
Depends: postgresql-${PG_MAJOR}, libc6
Section: database
Priority: optional
Description: connect application users to remote MCP servers with OAuth 2.1, inside PostgreSQL
 mcp_oauth is a PostgreSQL ${PG_MAJOR} extension: discovery, client registration,
 PKCE, tokens, refresh and MCP tool calls as SQL functions over a table
 guarded by row-level security. After installing: add mcp_oauth to
 shared_preload_libraries, restart, and CREATE EXTENSION mcp_oauth.
CONTROL
find "$stage" -type d -exec chmod 755 {} +
find "$stage" -type f -exec chmod 644 {} +
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >&2
echo "$deb"
