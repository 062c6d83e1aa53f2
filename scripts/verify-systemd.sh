#!/usr/bin/env bash
# `systemd-analyze verify` on the shipped unit. The unit names the installed path
# /usr/local/bin/scim-bridge, which verify requires to exist; check a copy that
# points at BINARY instead, with everything else unchanged.
set -euo pipefail
bin=$(realpath "$1")
if ! command -v systemd-analyze >/dev/null; then
  echo "verify-systemd: systemd-analyze not installed (apt-get install systemd); skipped" >&2
  exit 0
fi
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
sed "s#/usr/local/bin/scim-bridge#$bin#g" systemd/scim-bridge.service > "$work/scim-bridge.service"
systemd-analyze verify "$work/scim-bridge.service"
echo "verify-systemd: systemd/scim-bridge.service passes systemd-analyze verify"
