#!/usr/bin/env bash
# Benchmark: `snap analyze --format json` on a bundle of a loaded box (issue 4's goal:
# 2,000 processes and 20,000 sockets analyzed in under 200 ms and under 100 MB).
#
# Builds release, starts the load of benches/collect_vs_sos.sh (2,000 sleeping
# processes, 20,000 loopback sockets in holders of at most 4,000 connections each, as
# RLIMIT_NOFILE is 20,000 here), collects one bundle with `--window 5 --no-capture`,
# tears the load down (by pid), then times analyze with hyperfine and measures its peak
# RSS with /usr/bin/time -v. Run as root on a Linux box you may load briefly:
#
#   sudo benches/analyze.sh
#   RUNS=20 BUNDLE=/path/to/bundle.tar.zst sudo -E benches/analyze.sh   # reuse a bundle
#
# Needs: cargo, python3, hyperfine and Debian's `time` (installed with apt-get when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=benches/lib/load.sh
source benches/lib/load.sh
# shellcheck source=benches/lib/bench.sh
source benches/lib/bench.sh

RUNS=${RUNS:-10}
WARMUP=${WARMUP:-2}
EXTRA_PROCS=${EXTRA_PROCS:-2000}
EXTRA_CONNS=${EXTRA_CONNS:-10000}   # each connection is two sockets

bench_setup analyze
if [ -n "${BUNDLE:-}" ]; then
    bundle=$BUNDLE
else
    start_load "$EXTRA_PROCS" "$EXTRA_CONNS" "$work"
    mkdir -p "$work/out"
    bundle=$("$SNAP" collect --window 5 --no-capture --quiet -o "$work/out" | tail -n 1)
    teardown
fi

procs=$(tar --zstd -tf "$bundle" | grep -cE '^(\./)?proc/[0-9]+/stat$' || true)
sockets=$(tar --zstd -xOf "$bundle" scan/sockets.jsonl 2>/dev/null | grep -c . || true)
entries=$(tar --zstd -tf "$bundle" | wc -l)
raw_bytes=$(tar --zstd -xOf "$bundle" | wc -c)

# The second command opts out of the huge-page heap (src/heap.rs), in the same run.
hyperfine --warmup "$WARMUP" --runs "$RUNS" --export-json "$work/hf.json" \
    "$SNAP analyze --format json $bundle" \
    "env GLIBC_TUNABLES=glibc.malloc.hugetlb=0 $SNAP analyze --format json $bundle" --output=null >&2
read -r mean sd min max < <(hf_stats 0)
read -r mean4k sd4k _ _ < <(hf_stats 1)
/usr/bin/time -v -o "$work/time.txt" "$SNAP" analyze --format json "$bundle" >/dev/null
rss=$(awk -F': ' '/Maximum resident/ {printf "%.1f", $2/1024}' "$work/time.txt")

echo
echo "command:      $SNAP analyze --format json BUNDLE > /dev/null"
echo "bundle:       $(stat -c %s "$bundle") bytes compressed, $raw_bytes bytes in $entries entries"
echo "              $procs processes (proc/<pid>/stat), $sockets sockets (scan/sockets.jsonl)"
echo "wall time:    ${mean} ms ± ${sd} ms (min ${min}, max ${max}; hyperfine, $RUNS runs, $WARMUP warmup)"
echo "              ${mean4k} ms ± ${sd4k} ms with GLIBC_TUNABLES=glibc.malloc.hugetlb=0 (no huge pages)"
echo "peak RSS:     ${rss} MiB (/usr/bin/time -v)"
echo "goal:         < 200 ms and < 100 MB"
if [ -n "${KEEP_BUNDLE:-}" ]; then cp "$bundle" "$KEEP_BUNDLE" && echo "bundle kept at $KEEP_BUNDLE"; fi
