#!/usr/bin/env bash
# Install scimgateway (github.com/jelhub/scimgateway, MIT), the peer the HTTP bench
# compares against with its in-memory plugin (plugin-loki), under target/scimgateway-peer:
#   bun/  Bun 1.3.12 from npm's `bun` package, pinned by scripts/peer/bun/package-lock.json
#   app/  the vendored sources (scripts/peer/scimgateway, see UPSTREAM.md there) with
#         their npm dependencies, pinned by upstream's own bun.lock (`bun install --frozen-lockfile`)
#
# Why Bun and not Debian's node: scimgateway 6 is written for Bun (`"start": "bun index.ts"`,
# Bun.serve when Bun is there) and its Node path needs node >= 22.6 (type stripping);
# Debian 12 ships node 18/20. npm's `bun` package ships the binary, so npm is all it takes.
#
# Usage (from the repo root):  scripts/peer/install-scimgateway.sh
# Env:
#   SCIMGATEWAY_PEER_DIR  install location, relative to the repo root unless absolute
#                         (default: target/scimgateway-peer)
#
# Idempotent: a stamp holds the hash of the lock files and the vendored tree; when it
# matches, nothing is done. Needs node and npm (Debian: apt-get install nodejs npm) and
# the npm registry; never GitHub (the sources are in this repository).
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${script_dir}/../.." && pwd)"
cd "${repo_root}"

dir="${SCIMGATEWAY_PEER_DIR:-target/scimgateway-peer}"
[[ "${dir}" = /* ]] || dir="${repo_root}/${dir}"
vendored="${script_dir}/scimgateway"
stamp="${dir}/.scimgateway-peer.sha256"

die() { echo "scimgateway peer install: ERROR: $*" >&2; exit 1; }

command -v npm >/dev/null 2>&1 || die "npm not found (on Debian: apt-get install nodejs npm)"

# The vendored files must be upstream's, byte for byte: UPSTREAM.md names the commit.
(cd "${vendored}" && sha256sum --quiet -c SHA256SUMS) \
  || die "scripts/peer/scimgateway differs from SHA256SUMS (upstream ${vendored}/UPSTREAM.md)"

want_hash="$(cat "${script_dir}/bun/package-lock.json" "${vendored}/SHA256SUMS" "${BASH_SOURCE[0]}" \
  | sha256sum | cut -d' ' -f1)"
if [[ -f "${stamp}" && "$(cat "${stamp}")" == "${want_hash}" && -x "${dir}/bin/bun" \
      && -d "${dir}/app/node_modules/lokijs" ]]; then
  echo "scimgateway peer install: ${dir} is up to date"
  exit 0
fi

# npm's bun package picks its binary in a postinstall script, which we do not run
# (--ignore-scripts): pick it here the same way (baseline = without AVX2).
bun_package() {
  case "$(uname -m)" in
    x86_64)
      if grep -qw avx2 /proc/cpuinfo; then echo "bun-linux-x64"; else echo "bun-linux-x64-baseline"; fi ;;
    aarch64) echo "bun-linux-aarch64" ;;
    *) die "no Bun build for $(uname -m)" ;;
  esac
}

start=$(date +%s)
rm -f "${stamp}"
mkdir -p "${dir}/bun" "${dir}/bin"
cp "${script_dir}/bun/package.json" "${script_dir}/bun/package-lock.json" "${dir}/bun/"
echo "scimgateway peer install: installing bun (pinned by scripts/peer/bun/package-lock.json)"
(cd "${dir}/bun" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) \
  || die "npm ci failed (is the npm registry reachable? see the output above)"
bun="${dir}/bun/node_modules/@oven/$(bun_package)/bin/bun"
[[ -x "${bun}" ]] || die "${bun} was not installed"
# npm installs every Linux build (it does not tell glibc from musl): keep the one used.
find "${dir}/bun/node_modules/@oven" -mindepth 1 -maxdepth 1 ! -name "$(bun_package)" -exec rm -rf {} +
ln -sfn "${bun}" "${dir}/bin/bun"
"${dir}/bin/bun" --version >/dev/null || die "${dir}/bin/bun does not run"

rm -rf "${dir}/app"
mkdir -p "${dir}/app"
cp -R "${vendored}/." "${dir}/app/"
echo "scimgateway peer install: installing scimgateway's dependencies (pinned by its bun.lock)"
(cd "${dir}/app" && "${dir}/bin/bun" install --frozen-lockfile --production --ignore-scripts --no-progress) \
  || die "bun install failed (is the npm registry reachable? see the output above)"
[[ -d "${dir}/app/node_modules/lokijs" ]] || die "lokijs was not installed into ${dir}/app"

echo "${want_hash}" > "${stamp}"
echo "scimgateway peer install: done in $(( $(date +%s) - start ))s" \
  "(scimgateway $(sed -n 's/^commit: //p' "${vendored}/UPSTREAM.md"), bun $("${dir}/bin/bun" --version))"
