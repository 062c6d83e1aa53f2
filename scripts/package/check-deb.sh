#!/usr/bin/env bash
# CI's check of the Debian package: builds it from BINARY (the debug build CI already
# has), installs it with `dpkg -i` on this machine, checks what an admin relies on
# (the files, the shipped config passing check-config, the unit passing
# systemd-analyze verify, the installed daemon answering healthcheck), then purges it
# and checks nothing is left.
#   scripts/package/check-deb.sh target/debug/scim-bridge
# Needs root: CI's machine is a throwaway Debian root. Elsewhere it says why it skips,
# and it never replaces a scim-bridge package installed outside CI.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
bin=$(realpath "${1:?usage: check-deb.sh BINARY}")
name=scim-bridge

skip() {
  echo "check-deb: SKIPPED — $*" >&2
  exit 0
}
fail() {
  echo "check-deb: FAILED — $*" >&2
  exit 1
}
installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$name" 2>/dev/null || true)" = installed ]
}

[ "$(id -u)" = 0 ] || skip "not root; dpkg -i needs root (CI runs as root)"
command -v dpkg >/dev/null || skip "dpkg not found: not a Debian-based system"
status=$(dpkg-query -W -f='${db:Status-Status}' "$name" 2>/dev/null || true)
if [ -n "$status" ] && [ "$status" != not-installed ]; then
  # Left behind by an interrupted run on CI's throwaway machine; anywhere else it may
  # be a real installation.
  [ "${CI:-}" = true ] || skip "a $name package is installed on this machine; not touching it"
  dpkg --purge "$name" >/dev/null
fi

work=$(mktemp -d)
daemon=""
cleanup() {
  if [ -n "$daemon" ]; then
    kill "$daemon" 2>/dev/null || true
    wait "$daemon" 2>/dev/null || true
  fi
  # A failed check must not leave the package on the machine.
  if installed; then dpkg --purge "$name" >/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# gzip: xz takes ~15 s more on a debug build and proves nothing more here.
deb=$(DEB_COMPRESSION=gzip "$repo/scripts/package/deb.sh" "$bin" "$work/out" | tail -n 1)
echo "check-deb: built $(basename "$deb") ($(du -h "$deb" | cut -f1))"

# Debian's own checks, where lintian is installed (it pulls in ~130 packages, so CI
# does not install it): errors and warnings fail, informational tags do not.
if command -v lintian >/dev/null; then
  if ! lintian --fail-on error,warning "$deb" > "$work/lintian.log" 2>&1; then
    grep -v 'root privileges' "$work/lintian.log" >&2
    fail "lintian"
  fi
  echo "check-deb: lintian: no errors or warnings"
else
  echo "check-deb: lintian not installed; Debian policy checks skipped" >&2
fi

dpkg -i "$deb" > "$work/install.log" 2>&1 || { cat "$work/install.log" >&2; fail "dpkg -i"; }
installed || fail "dpkg -i did not leave $name installed"
grep -q "not enabled or started" "$work/install.log" \
  || fail "postinst did not tell the admin to edit the config before enabling the service"

files=(
  /usr/bin/$name
  /lib/systemd/system/$name.service
  /etc/$name/$name.toml
  /usr/share/man/man1/$name.1.gz
  /usr/share/man/man1/$name-healthcheck.1.gz
  /usr/share/bash-completion/completions/$name
  /usr/share/zsh/vendor-completions/_$name
  /usr/share/fish/vendor_completions.d/$name.fish
  /usr/share/doc/$name/README.md
  /usr/share/doc/$name/copyright
  /usr/share/doc/$name/examples/prometheus/scim-bridge-alerts.yml
  /usr/share/doc/$name/examples/prometheus/scim-bridge-alerts.test.yml
  /usr/share/doc/$name/examples/grafana/scim-bridge-dashboard.json
)
for f in "${files[@]}"; do
  [ -f "$f" ] || fail "$f is not installed"
done
[ -x /usr/bin/$name ] || fail "/usr/bin/$name is not executable"
dpkg-query -W -f='${Conffiles}' "$name" | grep -q " /etc/$name/$name.toml " \
  || fail "/etc/$name/$name.toml is not a conffile (an upgrade would overwrite the admin's edits)"

# The config's database is where the unit's StateDirectory puts it.
grep -qx 'data_dir = "/var/lib/scim-bridge"' /etc/$name/$name.toml \
  || fail "the shipped config's data_dir is not /var/lib/scim-bridge"
grep -qx 'StateDirectory=scim-bridge' /lib/systemd/system/$name.service \
  || fail "the unit's StateDirectory is not scim-bridge"
grep -q "^ExecStart=/usr/bin/$name serve" /lib/systemd/system/$name.service \
  || fail "the unit does not start /usr/bin/$name"
grep -q '^ExecReload=' /lib/systemd/system/$name.service || fail "the unit has no ExecReload"

# The shipped config passes, both named and found by default (from /, as systemd runs).
(cd / && /usr/bin/$name check-config --config /etc/$name/$name.toml) \
  || fail "check-config rejects the shipped /etc/$name/$name.toml"
(cd / && env -u SCIM_BRIDGE_CONFIG /usr/bin/$name check-config >/dev/null 2>&1) \
  || fail "check-config without --config does not find /etc/$name/$name.toml"

if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify /lib/systemd/system/$name.service \
    || fail "systemd-analyze verify rejects the installed unit"
else
  echo "check-deb: systemd-analyze not installed; unit not verified" >&2
fi
zcat /usr/share/man/man1/$name.1.gz | grep -q '^\.TH' || fail "the man page is not roff"
bash -n /usr/share/bash-completion/completions/$name || fail "bash rejects the completion"

# The installed binary and config serve, and healthcheck finds the daemon from the
# config alone. The database goes to a scratch directory, not /var/lib.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export SCIM_BRIDGE__SERVER__LISTEN=127.0.0.1:$port
(cd / && exec /usr/bin/$name serve --data-dir "$work/data") > "$work/serve.log" 2>&1 &
daemon=$!
ready=""
for _ in $(seq 1 100); do
  if (cd / && /usr/bin/$name healthcheck >/dev/null 2>&1); then ready=1; break; fi
  kill -0 "$daemon" 2>/dev/null || break
  sleep 0.2
done
[ -n "$ready" ] || { cat "$work/serve.log" >&2; fail "the installed daemon never passed healthcheck"; }
kill "$daemon"
wait "$daemon" || true
daemon=""
(cd / && /usr/bin/$name healthcheck >/dev/null 2>&1) && fail "healthcheck passes with the daemon stopped"
unset SCIM_BRIDGE__SERVER__LISTEN

dpkg --purge "$name" > "$work/purge.log" 2>&1 || { cat "$work/purge.log" >&2; fail "dpkg --purge"; }
installed && fail "$name is still installed after dpkg --purge"
for f in "${files[@]}" /etc/$name; do
  [ ! -e "$f" ] || fail "$f is left after dpkg --purge"
done
echo "check-deb: $(basename "$deb") installs, passes check-config, systemd-analyze verify and healthcheck, and purges cleanly"
