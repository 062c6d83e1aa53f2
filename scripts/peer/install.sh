#!/usr/bin/env bash
# Install the peer SCIM test tools (scim2-cli/scim2-tester, scim-sanity,
# scim2-server) into a virtualenv, pinned by scripts/peer/requirements.txt.
#
# Usage (from the repo root):  scripts/peer/install.sh
# Env:
#   PEER_VENV  venv location, relative to the repo root unless absolute
#              (default: target/peer-venv)
#   PYTHON     interpreter used to create the venv (default: python3; needs >= 3.11)
#
# Idempotent: if the venv already holds exactly the pinned set (a stamp file
# records the requirements hash), it does nothing.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${script_dir}/../.." && pwd)"
cd "${repo_root}"

venv="${PEER_VENV:-target/peer-venv}"
python="${PYTHON:-python3}"
requirements="${script_dir}/requirements.txt"
stamp="${venv}/.peer-requirements.sha256"

die() { echo "peer install: ERROR: $*" >&2; exit 1; }

command -v "${python}" >/dev/null 2>&1 || die "'${python}' not found; set PYTHON to a Python >= 3.11 interpreter"
"${python}" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || die "'${python}' is $("${python}" -c 'import sys; print(sys.version.split()[0])'); the peer tools need Python >= 3.11 (set PYTHON)"
"${python}" -c 'import venv, ensurepip' >/dev/null 2>&1 \
  || die "'${python}' lacks the venv/ensurepip modules (on Debian: apt-get install python3-venv)"

want_hash="$(sha256sum "${requirements}" | cut -d' ' -f1)"
if [[ -x "${venv}/bin/python" && -f "${stamp}" && "$(cat "${stamp}")" == "${want_hash}" ]] \
   && [[ -x "${venv}/bin/scim2" && -x "${venv}/bin/scim-sanity" && -x "${venv}/bin/scim2-server" ]]; then
  echo "peer install: ${venv} is up to date"
  exit 0
fi

start=$(date +%s)
if [[ ! -x "${venv}/bin/python" ]]; then
  echo "peer install: creating venv ${venv}"
  mkdir -p "$(dirname "${venv}")"
  "${python}" -m venv "${venv}" || die "could not create the venv at ${venv}"
fi
rm -f "${stamp}"

echo "peer install: installing pinned packages from scripts/peer/requirements.txt"
if ! "${venv}/bin/python" -m pip install --quiet --disable-pip-version-check \
      --no-input -r "${requirements}"; then
  die "pip install failed (is PyPI reachable? see the pip output above)"
fi

for tool in scim2 scim-sanity scim2-server; do
  [[ -x "${venv}/bin/${tool}" ]] || die "'${tool}' was not installed into ${venv}/bin"
done
"${venv}/bin/scim2" --help >/dev/null 2>&1 || die "'scim2 --help' fails in ${venv}"
"${venv}/bin/scim-sanity" --version >/dev/null 2>&1 || die "'scim-sanity --version' fails in ${venv}"
"${venv}/bin/scim2-server" --help >/dev/null 2>&1 || die "'scim2-server --help' fails in ${venv}"

echo "${want_hash}" > "${stamp}"
echo "peer install: done in $(( $(date +%s) - start ))s ($("${venv}/bin/scim-sanity" --version 2>&1 | tail -n1))"
