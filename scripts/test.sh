#!/usr/bin/env bash
# The whole test suite, as CI runs it: unit and integration tests (real binary, real
# SQLite files), the peer SCIM suites from PyPI against the real binary, and the
# systemd unit check. Installs what it needs (a Python venv under target/).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo test"
cargo build --locked --bins
cargo test --locked

echo "== peer SCIM suites (scim2-tester, scim-sanity)"
scripts/peer/install.sh
for provider in entra okta; do
  scripts/peer/against-binary.sh target/debug/scim-bridge "$provider"
done

echo "== systemd unit"
scripts/verify-systemd.sh target/debug/scim-bridge

echo "test.sh: all suites passed"
