#!/usr/bin/env bash
# The detector's figures on a labelled corpus (CSV timestamp,value,label per series), with the
# default config and one set of levels for every series: `noctua backtest --metric kpi` on each
# file, whose summary gives point-adjusted precision, recall and F1 and the false raises a day.
# Usage: scripts/detect-figures.sh DIR [noctua binary]
set -euo pipefail
dir=${1:?usage: detect-figures.sh DIR [noctua]}
bin=${2:-target/release/noctua}
printf '%-36s %s\n' series summary
for f in "$dir"/*.csv; do
    summary=$("$bin" backtest --metric kpi "$f" --output /dev/null 2>&1 | tail -n 1)
    printf '%-36s %s\n' "$(basename "$f" .csv)" "$summary"
done
