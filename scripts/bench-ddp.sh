#!/bin/bash
# Data-parallel training throughput on this machine, docs/BENCHMARKS.md:
# one process with 2 threads against 2 ranks with 1 thread each (lvnet train
# --nproc-per-node 2, Gloo on loopback), the same global batch, for the
# shipped default configuration and the paper's network. Prints images/s of
# the training steps (total images over total step time, the first 2 steps
# left out) and the all-reduce time rank 0 measures at the start.
# usage: scripts/bench-ddp.sh [DATA]   (default ../shared/data/ffpp-crops)
set -euo pipefail
L=${LVNET:-bin/lvnet}
DATA=${1:-../shared/data/ffpp-crops}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# rate METRICS: images/s over the steps after the first two.
rate() {
  grep '"kind":"step"' "$1" | tail -n +3 | grep -o '"images_per_s":[0-9.e+-]*' | cut -d: -f2 |
    awk -v b="$2" '{t += b / $1; n += b} END {printf "%.2f", n / t}'
}

# run NAME PRESET GLOBAL_BATCH STEPS RANKS
run() {
  local out=$T/$1 per=$(($3 / $5))
  if [ "$5" = 1 ]; then
    LVNET_THREADS=2 $L train --preset "$2" --batch-size "$3" --max-steps "$4" --data "$DATA" --out "$out" 2>"$out.log"
  else
    LVNET_THREADS=1 $L train --nproc-per-node "$5" --preset "$2" --batch-size "$per" --max-steps "$4" --data "$DATA" --out "$out" 2>"$out.log"
  fi
  local ar
  ar=$(grep -o 'all-reduce of the .*' "$out.log" || echo "-")
  printf '%-8s %-22s %8s img/s   %s\n' "$2" "$5 x $per (threads $((2 / $5)))" "$(rate "$out/metrics.jsonl" "$3")" "$ar"
}

echo "preset   ranks x batch (threads)  training      all-reduce"
run default-1 default 32 14 1
run default-2 default 32 14 2
run paper-1 paper 4 6 1
run paper-2 paper 4 6 2
