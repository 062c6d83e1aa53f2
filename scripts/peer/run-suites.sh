#!/usr/bin/env bash
# Run the two peer SCIM conformance suites against a live SCIM service provider:
#   1. scim2-tester, through scim2-cli:  scim2 --url URL test --verbose
#      (bearer token passed in SCIM_CLI_HEADERS, never on the command line)
#   2. scim-sanity:  scim-sanity probe URL --token TOKEN --i-accept-side-effects --json-output
# Both create, modify and delete Users and Groups on the target (and clean up).
#
# Usage (from the repo root, after scripts/peer/install.sh):
#   scripts/peer/run-suites.sh URL TOKEN
#   URL is the SCIM base URL, e.g. http://127.0.0.1:8080/v2 (no trailing slash needed).
# Env:
#   PEER_VENV           venv location (default: target/peer-venv)
#   PEER_RESULTS        output folder (default: target/peer-results)
#   PEER_SUITE_TIMEOUT  seconds allowed per suite (default: 900)
#
# Output: a compact summary per suite, then the final line
#   peer-suites: N passed, M failed
# Full outputs go to PEER_RESULTS: scim2-tester.txt (+ .stderr), scim-sanity.json
# (+ .stderr) and summary.json (every result, normalized).
# Exit status: 0 if no scim2-tester check failed and every failing scim-sanity
# check is listed in scripts/peer/scim-sanity-allowed.txt; 1 otherwise; 2 on bad usage.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${script_dir}/../.." && pwd)"
cd "${repo_root}"

if [[ $# -ne 2 || -z "$1" ]]; then
  echo "usage: $0 URL TOKEN" >&2
  exit 2
fi
url="${1%/}"
token="$2"

venv="${PEER_VENV:-target/peer-venv}"
results="${PEER_RESULTS:-target/peer-results}"
suite_timeout="${PEER_SUITE_TIMEOUT:-900}"
allow_list="${script_dir}/scim-sanity-allowed.txt"

for tool in python scim2 scim-sanity; do
  if [[ ! -x "${venv}/bin/${tool}" ]]; then
    echo "run-suites: ${venv}/bin/${tool} not found; run scripts/peer/install.sh first" >&2
    echo "peer-suites: 0 passed, 1 failed"
    exit 1
  fi
done

mkdir -p "${results}"
rm -f "${results}/scim2-tester.txt" "${results}/scim2-tester.stderr" \
      "${results}/scim-sanity.json" "${results}/scim-sanity.stderr" "${results}/summary.json"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# -- scim2-tester via scim2-cli ------------------------------------------------
# SCIM_CLI_HEADERS holds "Name: value" headers separated by ";".
echo "run-suites: scim2-tester (scim2 --url ${url} test) ..."
t0="$(now)"
set +e
SCIM_CLI_HEADERS="Authorization: Bearer ${token}" \
  timeout "${suite_timeout}" "${venv}/bin/scim2" --url "${url}" test --verbose \
  >"${results}/scim2-tester.txt" 2>"${results}/scim2-tester.stderr" </dev/null
tester_rc=$?
set -e
tester_secs="$(elapsed "${t0}" "$(now)")"

# -- scim-sanity ---------------------------------------------------------------
echo "run-suites: scim-sanity (scim-sanity probe ${url}) ..."
t0="$(now)"
set +e
timeout "${suite_timeout}" "${venv}/bin/scim-sanity" probe "${url}" \
  --token "${token}" --i-accept-side-effects --json-output \
  >"${results}/scim-sanity.json" 2>"${results}/scim-sanity.stderr" </dev/null
sanity_rc=$?
set -e
sanity_secs="$(elapsed "${t0}" "$(now)")"

# -- summary -------------------------------------------------------------------
set +e
"${venv}/bin/python" "${script_dir}/summarize.py" \
  --url "${url}" \
  --tester-txt "${results}/scim2-tester.txt" \
  --tester-stderr "${results}/scim2-tester.stderr" \
  --tester-rc "${tester_rc}" --tester-secs "${tester_secs}" \
  --sanity-json "${results}/scim-sanity.json" \
  --sanity-stderr "${results}/scim-sanity.stderr" \
  --sanity-rc "${sanity_rc}" --sanity-secs "${sanity_secs}" \
  --allow "${allow_list}" \
  --out "${results}/summary.json"
summary_rc=$?
set -e
if [[ ${summary_rc} -ne 0 && ${summary_rc} -ne 1 ]]; then
  echo "run-suites: summarize.py failed (exit ${summary_rc})" >&2
  echo "peer-suites: 0 passed, 1 failed"
  exit 1
fi
exit "${summary_rc}"
