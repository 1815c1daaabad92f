#!/usr/bin/env bash
# bench-peer.sh CHECKOUT [REPS] — times the authors' PyTorch LVNet and ours side
# by side on this machine, in one run (absolute times drift on shared machines;
# the ratios are what to quote). CHECKOUT is a work tree of
# github.com/sccsok/Locate-and-Verify (see ../shared/peer/README.md; never commit
# it). Needs /usr/bin/python3 with python3-torch (Debian) and bin/lvnet (make
# build) and /usr/bin/time (Debian package time). Prints the JSON line of each
# run:
#   peer        the authors' code as shipped
#   peer-malloc the authors' code with glibc told to keep freed memory
#   ours        lvnet bench (fp32, inference rewrite, caching allocator)
#   ours-bf16   lvnet bench --bf16 (eval only)
set -euo pipefail
cd "$(dirname "$0")/.."
CHECKOUT=${1:?usage: scripts/bench-peer.sh CHECKOUT [REPS]}
REPS=${2:-3}
THREADS=${THREADS:-2}
SHARED=${LVNET_SHARED:-../shared}
PEER="$SHARED/peer/bench_official.py"
[ -f "$PEER" ] || { echo "no $PEER" >&2; exit 1; }
[ -x bin/lvnet ] || { echo "build first: make build" >&2; exit 1; }
# Each run prints its JSON line and then the process's peak resident memory as
# /usr/bin/time measures it (the same measure for both sides).
run() {
  echo "== $1"; shift
  local t; t=$(mktemp)
  /usr/bin/time -f '%M' -o "$t" "$@" 2>/dev/null | tail -n 1
  echo "peak RSS (time -f %M): $(( $(tail -n 1 "$t") / 1024 )) MB"
  rm -f "$t"
}
run peer /usr/bin/python3 "$PEER" "$CHECKOUT" "$REPS" "$THREADS"
run peer-malloc env MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=4294967296 MALLOC_TOP_PAD_=1073741824 \
  /usr/bin/python3 "$PEER" "$CHECKOUT" "$REPS" "$THREADS"
run ours ./bin/lvnet bench --json --reps "$REPS" --threads "$THREADS"
run ours-bf16 ./bin/lvnet bench --json --reps "$REPS" --threads "$THREADS" --bf16 --skip train_b4
