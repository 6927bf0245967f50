#!/usr/bin/env bash
# Benchmark: snap's TCP analysis of a 1 GB capture against `tshark -q -z expert` on the
# same file in the same run (issue 5's goal: at least 50 times faster). The capture is a
# corpus file replicated with new ports and addresses per copy
# (benches/tools/replicate_pcap.py). snap's side is the engine the tcp.* rules run,
# timed by an ignored test: streamed from the file, and in memory as rules see a bundle
# entry. Reports seconds, packets per second and the ratio; peak memory of both by
# /usr/bin/time -v.
#
#   benches/tcp_vs_tshark.sh                       # 206_example_b (large packets)
#   SOURCE=../shared/corpus/pcap/zeek-traces/tcp_ssh-dups.pcap benches/tcp_vs_tshark.sh
#   SIZE=2e8 benches/tcp_vs_tshark.sh              # a smaller file
#
# Needs: cargo, python3, tshark and Debian's `time` (installed with apt-get when missing).
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
big=$work/big.pcap
python3 benches/tools/replicate_pcap.py "$SOURCE" "$big" "$SIZE" >&2
cargo test --release -q --test oracle_tshark --no-run 2>/dev/null

echo "machine: $(nproc) CPUs, kernel $(uname -r), $(tshark -v | head -1)" >&2
/usr/bin/time -v -o "$work/tshark.time" tshark -r "$big" -q -z expert >/dev/null 2>&1
t_tshark=$(awk -F': ' '/Elapsed/ {split($2, a, ":"); s = a[length(a)]; m = (length(a) > 1) ? a[length(a)-1] : 0; print m * 60 + s}' "$work/tshark.time")
rss_tshark=$(awk -F': ' '/Maximum resident/ {printf "%.0f", $2/1024}' "$work/tshark.time")

SNAP_TCP_BENCH=$big /usr/bin/time -v -o "$work/snap.time" \
    cargo test --release -q --test oracle_tshark throughput -- --ignored --nocapture 2>/dev/null | tee "$work/snap.out" >&2
best() { grep "$1" "$work/snap.out" | sed -E 's/.* in ([0-9.]+) s.*/\1/' | sort -n | head -1; }
t_stream=$(best streamed)
t_memory=$(best "in memory")
rss_snap=$(awk -F': ' '/Maximum resident/ {printf "%.0f", $2/1024}' "$work/snap.time")

echo
echo "capture:      $(stat -c %s "$big") bytes from $(basename "$SOURCE")"
echo "tshark:       ${t_tshark} s, peak RSS ${rss_tshark} MiB  (tshark -r FILE -q -z expert)"
echo "snap stream:  ${t_stream} s (best of 3)  ratio $(python3 -c "print(round($t_tshark / $t_stream, 1))")x"
echo "snap memory:  ${t_memory} s (best of 3)  ratio $(python3 -c "print(round($t_tshark / $t_memory, 1))")x"
echo "snap peak RSS (the test process, file read into memory for the second run): ${rss_snap} MiB"
echo "goal:         at least 50x"
