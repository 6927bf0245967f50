#!/usr/bin/env bash
# Benchmark: the host part of `snap collect` (no sampling window) against `sos report`
# on the same machine, then snap again with 2,000 extra processes and 20,000 open
# loopback sockets. Reports wall time, CPU time, peak RSS and bundle size for each, and
# the ratios. Run as root on a Linux box you may load briefly:
#
#   sudo benches/collect_vs_sos.sh            # snap x5, sos x1, loaded snap x5
#   RUNS=3 SOS_RUNS=0 sudo -E benches/collect_vs_sos.sh   # skip sos
#
# Needs: cargo, python3, and Debian's `sosreport` and `time` packages (installed here
# with apt-get when missing). All load stays on loopback and is torn down on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=benches/lib/load.sh
source benches/lib/load.sh

RUNS=${RUNS:-5}
SOS_RUNS=${SOS_RUNS:-1}
EXTRA_PROCS=${EXTRA_PROCS:-2000}
EXTRA_CONNS=${EXTRA_CONNS:-10000}   # each connection is two sockets
SNAP_ARGS=(collect --window 0 --quiet)
# The capture window arrives with packet capture; skip it when the flag exists.
if ./target/release/snap collect --help 2>/dev/null | grep -q -- --no-capture; then SNAP_ARGS+=(--no-capture); fi

need() { command -v "$1" >/dev/null 2>&1; }
if ! need sos || ! need bc || ! [ -x /usr/bin/time ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sosreport time bc >/dev/null
fi
cargo build --release -q
SNAP=$PWD/target/release/snap
work=$(mktemp -d /var/tmp/snap-bench.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# measure LABEL OUTDIR CMD...: one run under /usr/bin/time -v; prints a TSV row
# label, wall s, cpu s, peak RSS MiB, output bytes.
measure() {
    local label=$1 out=$2; shift 2
    rm -rf "$out"; mkdir -p "$out"
    /usr/bin/time -v -o "$work/time.txt" "$@" >/dev/null 2>"$work/stderr.txt" || {
        echo "$label failed:" >&2; cat "$work/stderr.txt" >&2; return 1; }
    local wall user sys rss bytes
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$work/time.txt")
    user=$(awk -F': ' '/User time/ {print $2}' "$work/time.txt")
    sys=$(awk -F': ' '/System time/ {print $2}' "$work/time.txt")
    rss=$(awk -F': ' '/Maximum resident/ {printf "%.1f", $2/1024}' "$work/time.txt")
    bytes=$(find "$out" -type f \( -name '*.tar.*' \) -printf '%s\n' | awk '{s+=$1} END {print s+0}')
    printf '%s\t%.3f\t%.3f\t%s\t%s\n' "$label" "$wall" "$(echo "$user + $sys" | bc -l)" "$rss" "$bytes"
}

# median of column $2 over rows with label $1 in results
median() { awk -F'\t' -v l="$1" -v c="$2" '$1==l {print $c}' "$work/results.tsv" | sort -g |
    awk '{a[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

: >"$work/results.tsv"
echo "machine: $(nproc) CPUs, $(free -g | awk '/Mem:/ {print $2}') GiB, kernel $(uname -r), $(ls /proc | grep -c '^[0-9]') processes" >&2
for i in $(seq "$RUNS"); do measure snap "$work/out" "$SNAP" "${SNAP_ARGS[@]}" -o "$work/out" >>"$work/results.tsv"; done
for i in $(seq "$SOS_RUNS"); do
    measure sos "$work/sos" sos report --batch --quiet --tmp-dir "$work/sos" >>"$work/results.tsv"
done

# Load: extra processes and loopback sockets held open while snap runs again.
start_load "$EXTRA_PROCS" "$EXTRA_CONNS" "$work"
for i in $(seq "$RUNS"); do measure snap_loaded "$work/out" "$SNAP" "${SNAP_ARGS[@]}" -o "$work/out" >>"$work/results.tsv"; done

echo
printf '%-12s %10s %10s %12s %14s\n' run "wall s" "cpu s" "peak MiB" "bundle bytes"
for l in snap sos snap_loaded; do
    grep -q "^$l	" "$work/results.tsv" || continue
    printf '%-12s %10s %10s %12s %14s\n' "$l" "$(median $l 2)" "$(median $l 3)" "$(median $l 4)" "$(median $l 5)"
done
if grep -q "^sos	" "$work/results.tsv"; then
    echo
    echo "sos / snap, wall time: $(echo "$(median sos 2) / $(median snap 2)" | bc -l | xargs printf '%.1f')x"
    echo "sos / snap, CPU time:  $(echo "$(median sos 3) / $(median snap 3)" | bc -l | xargs printf '%.1f')x"
fi
echo "(medians of $RUNS snap runs and $SOS_RUNS sos runs; raw rows:)"
cat "$work/results.tsv"
