#!/usr/bin/env bash
# Installs the real peers the test suite talks to, from Debian's packages, if they are missing.
# Idempotent; needs root (CI runs as root) or sudo.
set -euo pipefail

need=()
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v promtool >/dev/null || need+=(prometheus)
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v mosquitto_sub >/dev/null || need+=(mosquitto-clients)
command -v openssl >/dev/null || need+=(openssl)
# NetFlow/IPFIX: softflowd exports to the live collector; tshark decodes the fixtures independently.
command -v softflowd >/dev/null || need+=(softflowd)
command -v tshark >/dev/null || need+=(tshark)
# SNMP: net-snmp's agent (run as nobody by the tests), its command-line tools, and python3 for
# the pass_persist IF-MIB the tests serve through it.
[ -x /usr/sbin/snmpd ] || need+=(snmpd)
command -v snmpget >/dev/null || need+=(snmp)
[ -x /usr/bin/python3 ] || need+=(python3)
command -v runuser >/dev/null || need+=(util-linux)
# The console's tests drive Debian's Chromium headless through chromedriver (WebDriver).
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
# The unit's ExecReload uses /bin/kill, and `systemd-analyze verify` checks that it exists.
[ -x /bin/kill ] || need+=(procps)
# The cluster's tests run a three-node NATS JetStream cluster on loopback.
command -v nats-server >/dev/null || need+=(nats-server)

if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup-peers: installing ${need[*]}"
  $sudo apt-get update -qq
  # Package scripts must not start services on the test machine.
  policy=/usr/sbin/policy-rc.d
  created_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod +x "$policy"
    created_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
  [ -z "$created_policy" ] || $sudo rm -f "$policy"
fi

for tool in systemd-analyze promtool mosquitto_sub mosquitto_pub openssl softflowd tshark snmpget runuser chromium chromedriver; do
  command -v "$tool" >/dev/null || { echo "setup-peers: $tool still missing" >&2; exit 1; }
done
[ -x /usr/sbin/mosquitto ] || { echo "setup-peers: /usr/sbin/mosquitto still missing" >&2; exit 1; }
[ -x /usr/sbin/snmpd ] || { echo "setup-peers: /usr/sbin/snmpd still missing" >&2; exit 1; }
[ -x /usr/bin/python3 ] || { echo "setup-peers: /usr/bin/python3 still missing" >&2; exit 1; }
