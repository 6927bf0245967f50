#!/usr/bin/env bash
# Benchmark: `snap diff --format json BEFORE AFTER` on two bundles of a loaded box
# (issue 6's goal: two bundles of 2,000 processes each diffed in under 300 ms).
#
# Builds release, starts the load of benches/lib/load.sh (2,000 sleeping processes,
# 20,000 loopback sockets), collects BEFORE, lets 10 s pass, collects AFTER, tears the
# load down (by pid), then times the diff with hyperfine, next to `snap analyze` of
# AFTER alone in the same run (a diff analyzes both bundles), and measures peak RSS with
# /usr/bin/time -v. Run as root on a Linux box you may load briefly:
#
#   sudo benches/diff.sh
#   BEFORE=a.tar.zst AFTER=b.tar.zst RUNS=20 sudo -E benches/diff.sh   # reuse bundles
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

bench_setup diff
if [ -n "${BEFORE:-}" ] && [ -n "${AFTER:-}" ]; then
    before=$BEFORE after=$AFTER
else
    start_load "$EXTRA_PROCS" "$EXTRA_CONNS" "$work"
    mkdir -p "$work/out"
    before=$("$SNAP" collect --window 5 --no-capture --quiet -o "$work/out" | tail -n 1)
    sleep 10
    after=$("$SNAP" collect --window 5 --no-capture --quiet -o "$work/out" | tail -n 1)
    teardown
fi

procs() { tar --zstd -tf "$1" | grep -cE '^(\./)?proc/[0-9]+/stat$' || true; }
hyperfine --warmup "$WARMUP" --runs "$RUNS" --export-json "$work/hf.json" \
    "$SNAP diff --format json $before $after" \
    "$SNAP analyze --format json $after" --output=null >&2
read -r mean sd min max < <(hf_stats 0)
read -r amean asd _ _ < <(hf_stats 1)
/usr/bin/time -v -o "$work/time.txt" "$SNAP" diff --format json "$before" "$after" >/dev/null
rss=$(awk -F': ' '/Maximum resident/ {printf "%.1f", $2/1024}' "$work/time.txt")

echo
echo "command:      $SNAP diff --format json BEFORE AFTER > /dev/null"
echo "bundles:      $(procs "$before") and $(procs "$after") processes (proc/<pid>/stat)"
echo "wall time:    ${mean} ms ± ${sd} ms (min ${min}, max ${max}; hyperfine, $RUNS runs, $WARMUP warmup)"
echo "              analyze of AFTER alone, same run: ${amean} ms ± ${asd} ms"
echo "peak RSS:     ${rss} MiB (/usr/bin/time -v)"
echo "goal:         < 300 ms"
if [ -n "${KEEP:-}" ]; then cp "$before" "$KEEP.before.tar.zst" && cp "$after" "$KEEP.after.tar.zst" && echo "kept at $KEEP.*"; fi
