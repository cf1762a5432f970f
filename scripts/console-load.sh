#!/usr/bin/env bash
# The console's cost to the daemon: `noctua demo` alone, then with N consoles' live streams
# open (what a console keeps open: the SSE stream with suppressed alarms; the page and its
# settings are fetched once per console). Prints the daemon's CPU share and RSS for each.
# Usage: scripts/console-load.sh [N=50] [SECONDS=60] [BIN=target/release/noctua]
set -euo pipefail
n=${1:-50}; secs=${2:-60}; bin=${3:-target/release/noctua}
port=19700
dir=$(mktemp -d)
"$bin" --log-level warn demo --listen 127.0.0.1:$port --ready-file "$dir/ready" >/dev/null 2>&1 &
pid=$!
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT
while [ ! -s "$dir/ready" ]; do sleep 0.1; done
ticks() { awk '{print $14 + $15}' /proc/$pid/stat; }
rss() { awk '/VmRSS/ {print $2}' /proc/$pid/status; }
hz=$(getconf CLK_TCK)
measure() {
  local t0 c0 t1 c1
  t0=$(date +%s.%N); c0=$(ticks); sleep "$secs"; t1=$(date +%s.%N); c1=$(ticks)
  awk -v c="$((c1 - c0))" -v hz="$hz" -v t0="$t0" -v t1="$t1" -v r="$(rss)" -v what="$1" \
    'BEGIN { printf "%-22s CPU %5.2f %% of a core   RSS %6.1f MB\n", what, 100 * c / hz / (t1 - t0), r / 1024 }'
}
sleep 10  # past start-up
measure "demo, no console"
for i in $(seq "$n"); do
  for p in / /console/console.js /console/common.js /console/console.css /api/v1/console; do
    curl -s -o /dev/null "http://127.0.0.1:$port$p"
  done
  curl -sN -H 'Accept: text/event-stream' "http://127.0.0.1:$port/api/v1/alarms/stream?suppressed=true" >/dev/null &
done
sleep 2
measure "demo, $n consoles"
