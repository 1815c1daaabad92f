#!/usr/bin/env bash
# bench-engine.sh: measures what the Go layer (torch/ over csrc/lvshim) adds to
# libtorch. It builds the Go benchmarks of torch/bench_test.go and the same
# Xception blocks written directly in C++ (csrc/bench/blocks.cpp), runs both
# in alternating rounds on the same machine with the same threads, and prints
# a table of Go vs C++ times (wall clock and process CPU time, median round)
# and the overhead. Raw results: build/bench-engine/{go,cpp}.txt.
#
#   scripts/bench-engine.sh                 # 3 rounds x 5 iterations per case (~4 min on 2 CPUs)
#   ROUNDS=5 ITERS=10 scripts/bench-engine.sh
#   TORCH_DIR=/opt/libtorch scripts/bench-engine.sh
#
# Environment: LVNET_THREADS (intra-op threads, both sides; default all CPUs),
# OMP_WAIT_POLICY (default passive: see docs/BENCHMARKS.md), TINY (iterations
# of the per-op cost benchmark, default 200000), SUMMARY_ONLY=1 (print the
# table of the last run's raw results without running anything).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin

ROUNDS=${ROUNDS:-3}
ITERS=${ITERS:-5}
TINY=${TINY:-200000}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
TORCH_DIR=${TORCH_DIR:-}

if [ -z "$TORCH_DIR" ]; then
  CFLAGS=(-I/usr/include/torch/csrc/api/include)
  LDFLAGS=()
else
  abi=1
  grep -q 'GLIBCXX_USE_CXX11_ABI=0' "$TORCH_DIR/share/cmake/Torch/TorchConfig.cmake" 2>/dev/null && abi=0
  CFLAGS=(-I"$TORCH_DIR/include" -I"$TORCH_DIR/include/torch/csrc/api/include" -D_GLIBCXX_USE_CXX11_ABI=$abi)
  LDFLAGS=(-L"$TORCH_DIR/lib" -Wl,-rpath,"$TORCH_DIR/lib")
fi

out=build/bench-engine
if [ -z "${SUMMARY_ONLY:-}" ]; then
mkdir -p build
echo "building: shim, Go benchmark binary, C++ reference" >&2
make -s shim TORCH_DIR="$TORCH_DIR"
if [ -n "$TORCH_DIR" ]; then export CGO_LDFLAGS="${LDFLAGS[*]}"; fi
go test -c -o build/torch.test ./torch
g++ -O2 -std=c++17 "${CFLAGS[@]}" csrc/bench/blocks.cpp -o build/bench-blocks "${LDFLAGS[@]}" -ltorch_cpu -lc10

# Raw results stay in build/ for a closer look (SUMMARY_ONLY=1 re-reads them).
rm -rf "$out" && mkdir -p "$out"
# One case at a time, Go and C++ back to back (alternating which goes first),
# so that both see the same load on a shared machine.
go_case() { # block mode batch
  ./build/torch.test -test.run '^$' -test.bench "^Benchmark$1\$/^$2\$/^batch=$3\$" -test.benchtime "${ITERS}x" | grep ns/op >>"$out/go.txt"
}
cpp_case() {
  ./build/bench-blocks -iters "$ITERS" -run "Benchmark$1/$2/batch=$3" 2>/dev/null >>"$out/cpp.txt"
}
for r in $(seq 1 "$ROUNDS"); do
  echo "round $r/$ROUNDS" >&2
  for block in XceptionEntry XceptionMiddle; do
    for mode in forward train; do
      for batch in 1 4; do
        if [ $((r % 2)) = 1 ]; then
          go_case $block $mode $batch; cpp_case $block $mode $batch
        else
          cpp_case $block $mode $batch; go_case $block $mode $batch
        fi
      done
    done
    for batch in 1 4; do
      for variant in forward-scoped train-unpinned train-pinned-per-step; do go_case $block $variant $batch; done
    done
  done
  ./build/torch.test -test.run '^$' -test.bench TinyOp -test.benchtime "${TINY}x" | grep ns/op >>"$out/go.txt"
  ./build/bench-blocks -tiny "$TINY" -run TinyOp 2>/dev/null >>"$out/cpp.txt"
done

fi

threads=${LVNET_THREADS:-$(nproc)}
echo
echo "Go layer overhead: median of ${ROUNDS} rounds x ${ITERS} iterations, ${threads} intra-op threads, OMP_WAIT_POLICY=$OMP_WAIT_POLICY"
echo "$(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo
# Per case and side: the median over the rounds of wall time, process CPU time
# and minor page faults per iteration. Go's names carry a -GOMAXPROCS suffix;
# Go-only variants (forward-scoped, train-unpinned, train-pinned-per-step)
# compare with their C++ twin (forward, train).
awk '
  FNR == 1 { side = (FILENAME ~ /go.txt$/) ? "go" : "cpp" }
  $1 ~ /^Benchmark/ && /ns\/op/ {
    name = $1; sub(/-[0-9]+$/, "", name); sub(/^Benchmark/, "", name)
    key = side SUBSEP name
    n = ++cnt[key]
    for (i = 2; i <= NF; i++) {
      if ($(i) == "ns/op") wall[key, n] = $(i-1)
      if ($(i) == "cpu-ns/op") cpu[key, n] = $(i-1)
      if ($(i) == "faults/op") flt[key, n] = $(i-1)
    }
    if (side == "go" && !(name in seen)) { seen[name] = 1; order[++names] = name }
  }
  # median of metric m ("wall", "cpu", "flt") for key
  function med(m, key,   n, i, j, t, v) {
    n = cnt[key]
    for (i = 1; i <= n; i++) v[i] = (m == "wall") ? wall[key, i] + 0 : (m == "cpu") ? cpu[key, i] + 0 : flt[key, i] + 0
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
    return (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
  }
  function fmt(ns) { return ns >= 1e6 ? sprintf("%.2f ms", ns / 1e6) : sprintf("%.0f ns", ns) }
  function diff(g, c, tiny) { return tiny ? sprintf("%+.0f ns", g - c) : sprintf("%+.1f%%", 100 * (g - c) / c) }
  END {
    printf "| %-43s | %10s | %10s | %9s | %10s | %10s | %9s | %15s |\n", "case (medians)", "Go wall", "C++ wall", "overhead", "Go CPU", "C++ CPU", "overhead", "faults Go / C++"
    printf "|%s|%s|%s|%s|%s|%s|%s|%s|\n", "---------------------------------------------", "------------", "------------", "-----------", "------------", "------------", "-----------", "-----------------"
    for (k = 1; k <= names; k++) {
      name = order[k]; ref = name; sub(/-(scoped|unpinned|pinned-per-step)\//, "/", ref)
      g = "go" SUBSEP name; c = "cpp" SUBSEP ref
      if (!cnt[g] || !cnt[c]) continue
      tiny = name ~ /^TinyOp/
      gw = med("wall", g); cw = med("wall", c); gc = med("cpu", g); cc = med("cpu", c)
      faults = tiny ? "" : sprintf("%.0f / %.0f", med("flt", g), med("flt", c))
      printf "| %-43s | %10s | %10s | %9s | %10s | %10s | %9s | %15s |\n", name, fmt(gw), fmt(cw), diff(gw, cw, tiny), fmt(gc), fmt(cc), diff(gc, cc, tiny), faults
    }
  }' "$out/go.txt" "$out/cpp.txt"
