#!/usr/bin/env bash
# Prints config/scim-bridge.toml as installed systems use it: the database in the
# systemd unit's state directory (StateDirectory=scim-bridge, /var/lib/scim-bridge),
# and optionally another listen address (a container's 0.0.0.0:8080).
#   scripts/package/config.sh [LISTEN] > /etc/scim-bridge/scim-bridge.toml
# The Debian package and the container image ship its output; a manual install uses it
# too, so all three stay in step with the commented default.
set -euo pipefail
src="$(dirname "$0")/../../config/scim-bridge.toml"
listen=${1:-}
# Each sed expression must change exactly one line: a renamed key fails here rather
# than shipping a config that silently keeps the repository's ../data.
for key in data_dir ${listen:+listen}; do
  n=$(grep -c "^$key = " "$src" || true)
  if [ "$n" != 1 ]; then
    echo "config.sh: expected one '$key = ' line in $src, found $n" >&2
    exit 1
  fi
done
sed -e 's|^data_dir = .*|data_dir = "/var/lib/scim-bridge"|' \
    ${listen:+-e "s|^listen = .*|listen = \"$listen\"|"} \
    "$src"
