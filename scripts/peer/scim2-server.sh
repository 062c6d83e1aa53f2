#!/usr/bin/env bash
# Run scim2-server (in-memory SCIM 2.0 reference server) on 127.0.0.1:PORT in
# the foreground. `exec` replaces this shell, so the PID you spawn is the
# server's: kill it with SIGTERM/SIGINT when done.
#
# Usage (from the repo root, after scripts/peer/install.sh):
#   scripts/peer/scim2-server.sh PORT [extra scim2-server args...]
# Env:
#   SCIM2_SERVER_TOKEN  if set, only requests with "Authorization: Bearer <it>"
#                       are accepted (passed as --bearer-token; repeatable via
#                       extra args `--bearer-token T2`). Unset: no auth at all.
#                       Discovery endpoints (/ServiceProviderConfig, /Schemas,
#                       /ResourceTypes) stay readable without a token.
#   PEER_VENV           venv location (default: target/peer-venv)
#
# Base URL: http://127.0.0.1:PORT/v2  (the /v2 prefix is optional for it).
# Useful extra args: --dump-resources FILE, --service-provider-config FILE,
# --schema FILE, --resource-type FILE, --tenant NAME, --debug.
# It prints "Serving SCIM on http://127.0.0.1:PORT/v2" once listening, and logs
# one line per request on stderr.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${script_dir}/../.." && pwd)"

if [[ $# -lt 1 || ! "$1" =~ ^[0-9]+$ ]]; then
  echo "usage: $0 PORT [extra scim2-server args...]" >&2
  exit 2
fi
port="$1"
shift

venv="${PEER_VENV:-target/peer-venv}"
[[ "${venv}" = /* ]] || venv="${repo_root}/${venv}"
server="${venv}/bin/scim2-server"
if [[ ! -x "${server}" ]]; then
  echo "scim2-server.sh: ${server} not found; run scripts/peer/install.sh first" >&2
  exit 1
fi

args=(--hostname 127.0.0.1 --port "${port}")
if [[ -n "${SCIM2_SERVER_TOKEN:-}" ]]; then
  args+=(--bearer-token "${SCIM2_SERVER_TOKEN}")
fi

exec "${server}" "${args[@]}" "$@"
