#!/usr/bin/env bash
# Benchmark: snap's TCP analysis of a 1 GB capture against `tshark -q -z expert` on the
# same file in the same run (issue 5's goal: at least 50 times faster). The capture is a
# corpus file replicated with new ports and addresses per copy
# (benches/tools/replicate_pcap.py), placed as capture/window.pcap of a directory
# bundle; snap's side is `snap analyze --format json` of that bundle (the tcp rules
# stream the capture from the file). Reports seconds (best of 3 for snap), the ratio,
# and the peak memory of both (/usr/bin/time -v).
#
#   benches/tcp_vs_tshark.sh                       # 206_example_b (large packets)
#   SOURCE=../shared/corpus/pcap/zeek-traces/tcp_ssh-dups.pcap benches/tcp_vs_tshark.sh
#   SIZE=2e8 benches/tcp_vs_tshark.sh              # a smaller file
#
# Needs: cargo, python3, tshark and Debian's `time` (installed with apt-get when missing).
# The engine alone: SNAP_TCP_BENCH=FILE cargo test --release --test oracle_tshark \
#   throughput -- --ignored --nocapture
set -euo pipefail
cd "$(dirname "$0")/.."

SOURCE=${SOURCE:-../shared/corpus/pcap/zeek-traces/http_206_example_b.pcap}
SIZE=${SIZE:-1e9}
need() { command -v "$1" >/dev/null 2>&1; }
if ! need tshark || ! [ -x /usr/bin/time ]; then
    apt-get install -y -qq tshark time >/dev/null 2>&1 ||
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tshark time >/dev/null; }
fi
work=$(mktemp -d /var/tmp/snap-tcp-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bundle/capture"
big=$work/bundle/capture/window.pcap
python3 benches/tools/replicate_pcap.py "$SOURCE" "$big" "$SIZE" >&2
cargo build --release -q --bin snap
SNAP=${CARGO_TARGET_DIR:-$PWD/target}/release/snap
packets=$(tshark -r "$big" -T fields -e frame.number 2>/dev/null | tail -1)

echo "machine: $(nproc) CPUs, kernel $(uname -r), $(tshark -v | head -1)" >&2
secs() { awk -F': ' '/Elapsed/ {n = split($2, a, ":"); s = a[n]; m = (n > 1) ? a[n-1] : 0; print m * 60 + s}' "$1"; }
rss() { awk -F': ' '/Maximum resident/ {printf "%.0f", $2/1024}' "$1"; }
/usr/bin/time -v -o "$work/tshark.time" tshark -r "$big" -q -z expert >/dev/null 2>&1
best=""
all=""
for i in 1 2 3; do
    /usr/bin/time -v -o "$work/snap.$i.time" "$SNAP" analyze --format json "$work/bundle" >"$work/report.json"
    t=$(secs "$work/snap.$i.time")
    all="$all $t"
    if [ -z "$best" ] || python3 -c "import sys; sys.exit(0 if $t < $best else 1)"; then best=$t; keep=$i; fi
done
python3 - "$work/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print("snap found:", ", ".join(sorted({f["rule"] for f in r["findings"] if f["rule"].startswith("tcp.")})) or "nothing", file=sys.stderr)
PY

t_tshark=$(secs "$work/tshark.time")
echo
echo "capture:      $(stat -c %s "$big") bytes, $packets packets, from $(basename "$SOURCE")"
echo "tshark:       ${t_tshark} s, peak RSS $(rss "$work/tshark.time") MiB  (tshark -r FILE -q -z expert)"
echo "snap:         ${best} s (best of 3:$all), peak RSS $(rss "$work/snap.$keep.time") MiB  (snap analyze --format json DIR)"
echo "              $(python3 -c "print(round($packets / $best / 1e6, 2))") M packets/s"
echo "ratio:        $(python3 -c "print(round($t_tshark / $best, 1))")x (goal: at least 50x)"
