#!/usr/bin/env bash
# Install the OpenID Connect provider the console's sign-in tests run against: npm's
# `oidc-provider`, pinned by scripts/peer/oidc/package-lock.json, under
# target/oidc-peer (beside the Python peer tools in target/peer-venv).
#
# Usage (from the repo root):  scripts/peer/install-oidc.sh
# Env:
#   OIDC_PEER_DIR  install location, relative to the repo root unless absolute
#                  (default: target/oidc-peer)
#
# Idempotent: a stamp holds the hash of the lock file and the launcher; when they
# match, nothing is done. Needs node >= 20 and npm (Debian: apt-get install nodejs npm).
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${script_dir}/../.." && pwd)"
cd "${repo_root}"

dir="${OIDC_PEER_DIR:-target/oidc-peer}"
src="${script_dir}/oidc"
stamp="${dir}/.oidc-peer.sha256"

die() { echo "oidc peer install: ERROR: $*" >&2; exit 1; }

command -v node >/dev/null 2>&1 || die "node not found (on Debian: apt-get install nodejs npm)"
command -v npm >/dev/null 2>&1 || die "npm not found (on Debian: apt-get install npm)"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' \
  || die "node $(node --version) is too old; oidc-provider 9 needs node >= 20"

want_hash="$(cat "${src}/package-lock.json" "${src}/provider.mjs" | sha256sum | cut -d' ' -f1)"
if [[ -f "${stamp}" && "$(cat "${stamp}")" == "${want_hash}" && -d "${dir}/node_modules/oidc-provider" ]]; then
  echo "oidc peer install: ${dir} is up to date"
  exit 0
fi

start=$(date +%s)
mkdir -p "${dir}"
rm -f "${stamp}"
cp "${src}/package.json" "${src}/package-lock.json" "${src}/provider.mjs" "${dir}/"
echo "oidc peer install: installing oidc-provider (pinned by scripts/peer/oidc/package-lock.json)"
(cd "${dir}" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) \
  || die "npm ci failed (is the npm registry reachable? see the output above)"
[[ -d "${dir}/node_modules/oidc-provider" ]] || die "oidc-provider was not installed into ${dir}"
echo "${want_hash}" > "${stamp}"
echo "oidc peer install: done in $(( $(date +%s) - start ))s (oidc-provider $(node -p "require('./${dir}/node_modules/oidc-provider/package.json').version"))"
