#!/usr/bin/env bash
# The whole test suite, as CI runs it: unit and integration tests (real binary, real
# SQLite files, a throwaway PostgreSQL cluster), the peer SCIM suites from PyPI against
# the real binary, the systemd unit check and the Debian package (built, installed,
# checked, purged). Installs what it needs (a Python venv under target/).
set -euo pipefail
cd "$(dirname "$0")/.."

# The peers first: the outbound SCIM target's tests push into scim2-server, and with
# SCIM_BRIDGE_REQUIRE_PEERS set they fail rather than skip when it is missing.
echo "== peer tools (scim2-tester, scim-sanity, scim2-server)"
scripts/peer/install.sh
export SCIM_BRIDGE_REQUIRE_PEERS=1

# The PostgreSQL store's tests (conformance suite, several instances, migrate) start a
# throwaway cluster; where the server binaries are installed they must run, not skip.
if compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || [ -n "${SCIM_BRIDGE_PG_BIN:-}" ]; then
  export SCIM_BRIDGE_REQUIRE_POSTGRES=1
  echo "== PostgreSQL tests: on (server binaries found)"
else
  echo "== PostgreSQL tests: SKIPPED — no /usr/lib/postgresql/*/bin/initdb (install the"
  echo "   'postgresql' package, or set SCIM_BRIDGE_PG_BIN to its bin directory, to run them)"
fi

# The shipped Prometheus alert rules and Grafana dashboard queries are checked and
# unit-tested with promtool (Debian's prometheus package); where it is installed it
# must run, not skip.
if command -v promtool >/dev/null; then
  export SCIM_BRIDGE_REQUIRE_PROMTOOL=1
  echo "== alert rule tests (promtool): on"
else
  echo "== alert rule tests (promtool): SKIPPED — promtool not found (install the"
  echo "   'prometheus' package to run them)"
fi

# The console's browser test drives Debian's chromium through chromedriver; where they
# are installed (CI installs them) it must run, not skip.
if command -v chromedriver >/dev/null; then
  export SCIM_BRIDGE_REQUIRE_BROWSER=1
  echo "== console browser test: on (chromedriver found); screenshots in target/console-screenshots/"
else
  echo "== console browser test: SKIPPED — install 'chromium' and 'chromium-driver' to run it"
fi

# The console's OpenID Connect test runs npm's oidc-provider (installed under
# target/oidc-peer); where node and chromedriver are installed it must run, not skip.
if command -v node >/dev/null && command -v npm >/dev/null && command -v chromedriver >/dev/null; then
  scripts/peer/install-oidc.sh
  export SCIM_BRIDGE_REQUIRE_OIDC=1
  echo "== console OpenID Connect test: on (node, npm and chromedriver found)"
else
  echo "== console OpenID Connect test: SKIPPED — install 'nodejs', 'npm' and 'chromium-driver' to run it"
fi

echo "== cargo test"
cargo build --locked --bins
cargo test --locked

echo "== peer SCIM suites against the binary"
for provider in entra okta; do
  scripts/peer/against-binary.sh target/debug/scim-bridge "$provider"
done

echo "== systemd unit"
scripts/verify-systemd.sh target/debug/scim-bridge

# Built from the debug binary above (no second, release build), installed with dpkg -i,
# checked and purged; skipped with a message where this is not root.
echo "== Debian package"
scripts/package/check-deb.sh target/debug/scim-bridge

echo "test.sh: all suites passed"
