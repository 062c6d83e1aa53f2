#!/usr/bin/env bash
# Starts BINARY on a free port with a throwaway data dir, creates a token for
# PROVIDER, runs both peer suites against /scim/v2/PROVIDER, stops the daemon.
# Usage: scripts/peer/against-binary.sh BINARY PROVIDER
set -euo pipefail
bin=$(realpath "$1"); provider=$2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/c.toml" <<TOML
[server]
listen = "127.0.0.1:$port"
data_dir = "$work/data"
[logging]
level = "warn"
[[providers]]
name = "entra"
dialect = "entra"
[[providers]]
name = "okta"
dialect = "okta"
TOML
token=$("$bin" token create --provider "$provider" --config "$work/c.toml" 2>/dev/null | tail -n 1)
"$bin" serve --config "$work/c.toml" 2>"$work/daemon.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
PEER_RESULTS=${PEER_RESULTS:-target/peer-results/$provider} \
  "$here/run-suites.sh" "http://127.0.0.1:$port/scim/v2/$provider" "$token"
