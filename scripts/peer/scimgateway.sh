#!/usr/bin/env bash
# Run scimgateway with its in-memory plugin (plugin-loki) on 127.0.0.1:PORT in the
# foreground, from RUNDIR. `exec` replaces this shell, so the PID you spawn is Bun's:
# stop it with SIGTERM or SIGINT (it stops its listener and exits 0).
#
# Usage (from the repo root, after scripts/peer/install-scimgateway.sh):
#   SCIMGATEWAY_TOKEN=T scripts/peer/scimgateway.sh PORT RUNDIR
# RUNDIR is created if missing; it receives a copy of the gateway's sources, its
# config/plugin-loki.json and its logs/. scimgateway finds its configuration beside
# the plugin file (../config) and logs beside it (../logs), so each run gets its own
# copy and the installed tree stays untouched.
# Env:
#   SCIMGATEWAY_TOKEN      required: only "Authorization: Bearer <it>" is accepted
#                          (no basic auth). The config names the variable, not the value,
#                          so scimgateway never writes the token back encrypted.
#   SCIMGATEWAY_LOG_LEVEL  its log file's level: debug, info (default), warn or error;
#                          at info it logs every request with its response body.
#   SCIMGATEWAY_PEER_DIR   install location (default: target/scimgateway-peer)
#
# Base URL: http://127.0.0.1:PORT (the /v2 prefix is optional for it). Listening once
# GET /ServiceProviderConfig answers 200 with the token. In memory: nothing persists, and
# it starts with upstream's two test users (bjensen, jsmith) and two groups.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${script_dir}/../.." && pwd)"

if [[ $# -ne 2 || ! "$1" =~ ^[0-9]+$ || -z "$2" ]]; then
  echo "usage: SCIMGATEWAY_TOKEN=T $0 PORT RUNDIR" >&2
  exit 2
fi
port="$1"
run_dir="$2"
[[ -n "${SCIMGATEWAY_TOKEN:-}" ]] || { echo "scimgateway.sh: set SCIMGATEWAY_TOKEN" >&2; exit 2; }

dir="${SCIMGATEWAY_PEER_DIR:-target/scimgateway-peer}"
[[ "${dir}" = /* ]] || dir="${repo_root}/${dir}"
bun="${dir}/bin/bun"
app="${dir}/app"
if [[ ! -x "${bun}" || ! -d "${app}/node_modules" ]]; then
  echo "scimgateway.sh: ${dir} is not installed; run scripts/peer/install-scimgateway.sh first" >&2
  exit 1
fi

mkdir -p "${run_dir}/config" "${run_dir}/logs"
cp -R "${app}/lib" "${app}/index.ts" "${app}/package.json" "${app}/tsconfig.json" "${run_dir}/"
ln -sfn "${app}/node_modules" "${run_dir}/node_modules"

# Upstream's template with the port, loopback only, bearer token only, and the log level.
SGW_PORT="${port}" SGW_LEVEL="${SCIMGATEWAY_LOG_LEVEL:-info}" \
  "${bun}" -e '
    const [from, to] = process.argv.slice(1)
    const c = JSON.parse(await Bun.file(from).text())
    const g = c.scimgateway
    g.port = Number(process.env.SGW_PORT)
    g.localhostonly = true
    g.log.loglevel = { file: process.env.SGW_LEVEL, console: "error" }
    g.auth.basic = []
    g.auth.bearerToken = [{ token: "process.env.SCIMGATEWAY_TOKEN", readOnly: false, baseEntities: [] }]
    g.auth.bearerJwt = []
    g.auth.bearerOAuth = []
    c.endpoint.entity.undefined.persistence = false
    await Bun.write(to, JSON.stringify(c, null, 2))
  ' "${app}/config/plugin-loki.json" "${run_dir}/config/plugin-loki.json"

cd "${run_dir}"
# SEED: scimgateway keys its secret encryption with it, else with the machine id,
# which a container may not have; the token comes from the environment, unencrypted.
export SEED="${SEED:-scim-bridge-bench-seed}"
exec "${bun}" index.ts
