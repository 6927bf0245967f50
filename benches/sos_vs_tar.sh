#!/usr/bin/env bash
# Benchmark: `snap analyze` of a sos report against extracting the same report with
# tar(1), the step an engineer takes before reading one by hand. Two reports:
#   - the real one of ../shared/corpus/sosreport (sos 4.2, 71 MB extracted);
#   - one made here by `sos report --batch` with its default plugins (skip with
#     MAKE=0, or give your own with REPORT=path.tar.xz).
# Prints hyperfine's mean and range for each command, the ratio snap / tar, and peak
# RSS from /usr/bin/time -v. Run as root (sos report needs it):
#
#   sudo benches/sos_vs_tar.sh
#   RUNS=20 MAKE=0 benches/sos_vs_tar.sh
#
# Needs: cargo, python3, and Debian's hyperfine, time and sosreport packages (installed
# with apt-get when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=benches/lib/bench.sh
source benches/lib/bench.sh

RUNS=${RUNS:-10}
MAKE=${MAKE:-1}
bench_setup sos
if [ "$MAKE" = 1 ] && [ -z "${REPORT:-}" ] && ! command -v sos >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sosreport >/dev/null
fi

reports=("../shared/corpus/sosreport/sosreport-ubuntu20.04-vault.tar.xz")
if [ -n "${REPORT:-}" ]; then
    reports+=("$REPORT")
elif [ "$MAKE" = 1 ]; then
    mkdir -p "$work/made"
    echo "making a sos report of this box (default plugins)..." >&2
    sos report --batch --quiet --tmp-dir "$work/made" >/dev/null
    reports+=("$(ls "$work"/made/*.tar.xz)")
fi

# Three ways to read a report with tar: extracted to disk (/var/tmp, what people do),
# extracted to memory (a tmpfs under /dev/shm: no disk cost), and only decompressed and
# read (`tar -xOf ... >/dev/null`, the floor any reader of a .tar.xz pays).
shm=$(mktemp -d /dev/shm/snap-sos-bench.XXXXXX)
trap 'rm -rf "$shm"; cleanup' EXIT
printf '%-28s %10s %10s %10s %10s %8s %8s %8s\n' report "disk ms" "tmpfs ms" "read ms" "snap ms" \
    "snap/tmpfs" "tar RSS" "snap RSS"
for r in "${reports[@]}"; do
    x="$work/x"
    hyperfine -w 2 -r "$RUNS" --export-json "$work/hf.json" \
        --prepare "rm -rf '$x' '$shm/x' && mkdir '$x' '$shm/x'" \
        -n "tar to disk" "tar -xf '$r' -C '$x'" \
        -n "tar to tmpfs" "tar -xf '$r' -C '$shm/x'" \
        -n "tar read only" "tar -xOf '$r' >/dev/null" \
        -n "snap analyze" "'$SNAP' analyze --format json '$r' >/dev/null" >&2
    read -r disk _ disk_min disk_max < <(hf_stats 0)
    read -r tmpfs _ tmpfs_min tmpfs_max < <(hf_stats 1)
    read -r readonly _ _ _ < <(hf_stats 2)
    read -r snap _ snap_min snap_max < <(hf_stats 3)
    rm -rf "$shm/x" && mkdir "$shm/x"
    tar_rss=$(/usr/bin/time -v tar -xf "$r" -C "$shm/x" 2>&1 >/dev/null | awk '/Maximum resident/ {print $6}')
    snap_rss=$(/usr/bin/time -v "$SNAP" analyze --format json "$r" 2>&1 >/dev/null | awk '/Maximum resident/ {print $6}')
    printf '%-28s %10s %10s %10s %10s %8s %5s MB %5s MB\n' "$(basename "$r" | cut -c1-28)" "$disk" "$tmpfs" \
        "$readonly" "$snap" "$(python3 -c "print(round($snap / $tmpfs, 2))")" $((tar_rss / 1024)) $((snap_rss / 1024))
    echo "  ranges: disk ${disk_min}..${disk_max}, tmpfs ${tmpfs_min}..${tmpfs_max}, snap ${snap_min}..${snap_max} ms;" \
        "$(du -sh "$shm/x" | cut -f1) in $(find "$shm/x" | wc -l) files extracted" >&2
done
