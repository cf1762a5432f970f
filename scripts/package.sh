#!/usr/bin/env bash
# Builds the Debian package, installs it on this machine, checks what it installed (files,
# conffile, token, the unit with `systemd-analyze verify`, the config), then purges it.
# Part of scripts/test.sh; needs root or sudo. Installs cargo-deb from crates.io if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

command -v cargo-deb >/dev/null || cargo install cargo-deb --locked --quiet
cargo deb --quiet
deb=$(ls -t target/debian/noctua_*.deb | head -1)
echo "package: installing $deb"
# The package must not start anything on the test machine, and starts nothing by itself.
$sudo dpkg -i "$deb" >/dev/null
trap '$sudo dpkg --purge noctua >/dev/null 2>&1 || true' EXIT

fail() { echo "package: $*" >&2; exit 1; }
for f in /usr/bin/noctua /etc/noctua/noctua.toml /lib/systemd/system/noctua.service \
         /lib/systemd/system/noctua.service.d/credentials.conf /usr/share/doc/noctua/README.md; do
  [ -e "$f" ] || fail "$f not installed"
done
dpkg-query -W -f='${Conffiles}\n' noctua | grep -q /etc/noctua/noctua.toml || fail "noctua.toml is not a conffile"
[ -s /etc/noctua/http.token ] || fail "no API token made"
[ "$(stat -c %a /etc/noctua/http.token)" = 600 ] || fail "the token is not root-only"
token=$(cat /etc/noctua/http.token)
/usr/bin/noctua check-config /etc/noctua/noctua.toml >/dev/null || fail "the packaged config does not check"
out=$(systemd-analyze verify /lib/systemd/system/noctua.service 2>&1) || fail "unit does not verify: $out"
if echo "$out" | grep -q noctua.service; then fail "unit warnings: $out"; fi
# A reinstall (an upgrade) keeps the token.
$sudo dpkg -i "$deb" >/dev/null
[ "$(cat /etc/noctua/http.token)" = "$token" ] || fail "the token changed on reinstall"
$sudo dpkg --purge noctua >/dev/null
trap - EXIT
[ ! -e /etc/noctua/http.token ] || fail "the token survived a purge"
[ ! -e /usr/bin/noctua ] || fail "the binary survived a purge"
echo "package: ok ($deb)"
