#!/usr/bin/env bash
# Benchmark: the packet capture of `snap collect` against `tcpdump -w`, both capturing
# the same UDP load on loopback at the same time. For each rate the load generator
# (benches/tools/udp_flood.rs, built as the example `udp_flood`) sends to one port for
# LOAD_SECONDS; snap (--iface lo --filter 'udp port P', snaplen 128) and
# tcpdump (-i lo -s 128 -w FILE 'udp port P') capture it. Reported per rate: datagrams
# sent, packets captured and dropped by the kernel for each tool, the CPU time each
# capture used, CPU ms per 100k packets captured, and the ratio snap / tcpdump.
#
#   sudo benches/capture_vs_tcpdump.sh
#   RATES="100000 max" LOAD_SECONDS=3 sudo -E benches/capture_vs_tcpdump.sh
#   SNAP_EXTRA=--no-nice sudo -E benches/capture_vs_tcpdump.sh   # snap at normal priority
#   BUSY=2 sudo -E benches/capture_vs_tcpdump.sh   # on a busy box: 2 busy loops at nice 0
#
# CPU: snap's is its capture thread's run time (/proc/PID/task/TID/schedstat, sampled
# every 50 ms while it lives; the load ends before the capture does, so the last sample
# holds all of the busy time); "proc ms" adds the rest of the run (the host collection
# and compressing the bundle), from GNU time. tcpdump's is its whole process, from GNU
# time. By default snap runs as it does for users: nice 19, best-effort/7 I/O; tcpdump at
# normal priority. Both see the same packets, so on a small machine they also compete
# for the CPU the generator leaves.
#
# Needs: root, cargo, tcpdump, GNU time (/usr/bin/time), tar with zstd. All traffic stays
# on loopback; everything started here is stopped, and the work directory removed, on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

RATES=${RATES:-"50000 100000 150000 max"}
LOAD_SECONDS=${LOAD_SECONDS:-4}
PAYLOAD=${PAYLOAD:-32}
SNAPLEN=128
PORT=${PORT:-47913}
SNAP_EXTRA=${SNAP_EXTRA:-}
BUSY=${BUSY:-0}
# snap's byte budget: it refuses to start unless the output directory has this much room.
MAX_BYTES=${MAX_BYTES:-4G}
WORK_PARENT=${WORK_PARENT:-/var/tmp}

[ "$(id -u)" = 0 ] || { echo "run as root: capturing needs CAP_NET_RAW" >&2; exit 1; }
for tool in cargo tcpdump tar; do
    command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "needs GNU time (/usr/bin/time; Debian: apt-get install time)" >&2; exit 1; }
[ "$LOAD_SECONDS" -ge 1 ] && [ "$LOAD_SECONDS" -le 60 ] || { echo "LOAD_SECONDS: 1 to 60" >&2; exit 1; }
[ "$BUSY" -ge 0 ] && [ "$BUSY" -le 64 ] || { echo "BUSY: 0 to 64" >&2; exit 1; }

cargo build --release -q --bin snap --example udp_flood
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
SNAP=$TARGET/release/snap
FLOOD=$TARGET/release/examples/udp_flood
TCPDUMP=$(command -v tcpdump)

work=$(mktemp -d "$WORK_PARENT/snap-capbench.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "${KEEP:-}" ] && echo "kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# child_of PID: the pid of PID's only child (GNU time's), waiting up to 5 s for it.
child_of() {
    local c
    for _ in $(seq 500); do
        c=$(cat "/proc/$1/task/$1/children" 2>/dev/null | awk '{print $1}')
        [ -n "$c" ] && { echo "$c"; return 0; }
        sleep 0.01
    done
    return 1
}

# capture_tid PID: the tid of snap's thread `snap-capture`, waiting up to 30 s for it.
capture_tid() {
    local t
    for _ in $(seq 3000); do
        for t in /proc/"$1"/task/*; do
            [ "$(cat "$t/comm" 2>/dev/null)" = snap-capture ] && { basename "$t"; return 0; }
        done
        [ -d "/proc/$1" ] || return 1
        sleep 0.01
    done
    return 1
}

# poll_cpu FILE TASKDIR: writes TASKDIR's run time in ns (schedstat) to FILE every 50 ms
# while the task lives, then exits.
poll_cpu() {
    local s
    while s=$(cat "$2/schedstat" 2>/dev/null); do
        echo "${s%% *}" >"$1"
        sleep 0.05
    done
}

# field NAME FILE: the number after "NAME": in a JSON file (the capture record's fields
# are unique in the manifest).
field() { grep -o "\"$1\": *[0-9]*" "$2" | head -1 | grep -o '[0-9]*$'; }
# cpu_s FILE: user + system seconds from a GNU time file written with -f "%U %S".
cpu_s() { awk 'END {print $1 + $2}' "$1"; }

run_rate() {
    local rate=$1 d=$work/$1 tpid spid tid ttpid tdpid i
    mkdir -p "$d/out"
    local capture_s=$((LOAD_SECONDS + 3))
    # snap: the capture starts after the host collection; the load waits for it.
    # shellcheck disable=SC2086
    /usr/bin/time -f "%U %S" -o "$d/snap.time" "$SNAP" collect --window 0 --capture-seconds "${capture_s}s" \
        --deadline "$((capture_s + 60))s" --iface lo --filter "udp port $PORT" --max-packets 4000000000 \
        --max-capture-bytes "$MAX_BYTES" --max-bytes "$MAX_BYTES" --quiet -o "$d/out" $SNAP_EXTRA \
        >"$d/snap.out" 2>"$d/snap.err" &
    tpid=$!; pids+=("$tpid")
    spid=$(child_of "$tpid") || { echo "snap did not start" >&2; cat "$d/snap.err" >&2; return 1; }
    tid=$(capture_tid "$spid") || { echo "snap's capture did not start" >&2; cat "$d/snap.err" >&2; return 1; }
    poll_cpu "$d/snap.cpu_ns" "/proc/$spid/task/$tid" &
    pids+=($!)

    /usr/bin/time -f "%U %S" -o "$d/tcpdump.time" "$TCPDUMP" -i lo -n -s "$SNAPLEN" -Z root \
        -w "$d/tcpdump.pcap" "udp port $PORT" 2>"$d/tcpdump.err" &
    ttpid=$!; pids+=("$ttpid")
    tdpid=$(child_of "$ttpid") || { echo "tcpdump did not start" >&2; return 1; }
    for i in $(seq 500); do grep -q "listening on" "$d/tcpdump.err" && break; sleep 0.01; done
    grep -q "listening on" "$d/tcpdump.err" || { cat "$d/tcpdump.err" >&2; return 1; }
    sleep 0.3   # snap's socket is bound well before its thread shows; this is for both

    timeout $((LOAD_SECONDS + 30)) "$FLOOD" "$PORT" "$rate" "$LOAD_SECONDS" "$PAYLOAD" >"$d/flood.out"
    sleep 1.5   # both rings drain: tcpdump hands a block over after up to 1 s
    kill -INT "$tdpid"
    for i in $(seq 1000); do kill -0 "$ttpid" 2>/dev/null || break; sleep 0.01; done
    kill -KILL "$tdpid" 2>/dev/null || true
    wait "$ttpid" || true
    wait "$tpid" || { echo "snap collect failed:" >&2; cat "$d/snap.err" >&2; return 1; }

    local bundle sent pps snap_seen snap_cap snap_drop snap_ns snap_proc td_cap td_recv td_drop td_cpu stopped
    bundle=$(tail -1 "$d/snap.out")
    tar --zstd -xOf "$bundle" manifest.json >"$d/manifest.json"
    sent=$(grep -o 'sent=[0-9]*' "$d/flood.out" | cut -d= -f2)
    pps=$(grep -o 'pps=[0-9]*' "$d/flood.out" | cut -d= -f2)
    snap_seen=$(field packets_seen "$d/manifest.json")
    snap_cap=$(field packets_captured "$d/manifest.json")
    snap_drop=$(field packets_dropped "$d/manifest.json")
    stopped=$(grep -o '"stopped_by": *"[a-z]*"' "$d/manifest.json" | grep -o '"[a-z]*"$' | tr -d '"')
    snap_ns=$(cat "$d/snap.cpu_ns" 2>/dev/null || echo 0)
    snap_proc=$(cpu_s "$d/snap.time")
    td_cap=$(awk '/packets captured/ {print $1}' "$d/tcpdump.err")
    td_recv=$(awk '/packets received by filter/ {print $1}' "$d/tcpdump.err")
    td_drop=$(awk '/packets dropped by kernel/ {print $1}' "$d/tcpdump.err")
    td_cpu=$(cpu_s "$d/tcpdump.time")
    [ "$stopped" = time ] || echo "warning: snap's capture was stopped by $stopped, not time" >&2
    rm -f "$bundle" "$d/tcpdump.pcap"
    # TSV: rate sent snap_seen snap_cap snap_drop snap_cpu_s snap_proc_s td_recv td_cap td_drop td_cpu_s pps
    printf '%s\t%s\t%s\t%s\t%s\t%.3f\t%.2f\t%s\t%s\t%s\t%.2f\t%s\n' "$rate" "$sent" "$snap_seen" "$snap_cap" \
        "$snap_drop" "$(awk -v n="$snap_ns" 'BEGIN {print n / 1e9}')" "$snap_proc" "$td_recv" "$td_cap" \
        "$td_drop" "$td_cpu" "$pps"
}

# Busy loops for the whole run (each ends by itself after 30 minutes at the latest).
for _ in $(seq "$BUSY"); do
    timeout 1800 sh -c 'while :; do :; done' &
    pids+=($!)
done
echo "machine: $(nproc) CPUs, kernel $(uname -r); $($TCPDUMP --version 2>&1 | head -1);" \
    "$BUSY busy loops; load: ${LOAD_SECONDS} s per rate, $PAYLOAD-byte UDP payload to 127.0.0.1:$PORT, snaplen $SNAPLEN" >&2
: >"$work/results.tsv"
for rate in $RATES; do
    echo "rate $rate ..." >&2
    run_rate "$rate" >>"$work/results.tsv"
done

awk -F'\t' '
function per100k(cpu, n) { return n > 0 ? sprintf("%.1f", cpu * 1000 * 100000 / n) : "-" }
BEGIN {
    printf "%-8s %9s %9s | %9s %8s %8s %8s %9s | %9s %8s %8s %9s | %6s\n", "rate", "sent", "sent pps",
        "snap cap", "dropped", "cpu ms", "proc ms", "ms/100k", "tcpd cap", "dropped", "cpu ms", "ms/100k", "ratio"
}
{
    pps = $12
    s = per100k($6, $4); t = per100k($11, $9)
    ratio = (s != "-" && t != "-" && t > 0) ? sprintf("%.2f", s / t) : "-"
    printf "%-8s %9d %9d | %9d %8d %8.0f %8.0f %9s | %9d %8d %8.0f %9s | %6s\n", $1, $2, pps, $4, $5,
        $6 * 1000, $7 * 1000, s, $9, $10, $11 * 1000, t, ratio
    if ($3 != $2) printf "         note: snap saw %d packets for %d sent\n", $3, $2
    if ($8 != "" && $8 != $2 && $8 != 2 * $2) printf "         note: tcpdump: %d received by filter for %d sent\n", $8, $2
    if ($8 == 2 * $2) twice = 1
    if ($5 == 0 && pps > best_s) best_s = pps
    if ($10 == 0 && pps > best_t) best_t = pps
}
END {
    printf "highest rate captured without kernel drops: snap %d pps, tcpdump %d pps\n", best_s, best_t
    print "cpu ms: snap = its capture thread, tcpdump = its process; proc ms = all of snap collect;"
    print "ms/100k = cpu ms per 100,000 packets captured; ratio = snap ms/100k / tcpdump ms/100k"
    if (twice) print "tcpdump: its kernel filter passed each packet twice (loopback sent + received copies; libpcap drops the sent one in user space)"
}' "$work/results.tsv"
