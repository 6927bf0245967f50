# Sourced by benches/analyze.sh and benches/diff.sh: what a timing of a snap command on
# loaded-box bundles needs.
#
# bench_setup NAME: installs hyperfine and Debian's `time` when missing, builds snap in
# release, and sets SNAP (the binary), work (a directory under /var/tmp removed on exit)
# and pids (processes of start_load, killed by `teardown` and on exit).
# hf_stats N: mean, stddev, min and max in ms of the Nth command of $work/hf.json.
bench_setup() {
    need() { command -v "$1" >/dev/null 2>&1; }
    if ! need hyperfine || ! [ -x /usr/bin/time ]; then
        apt-get install -y -qq hyperfine time >/dev/null 2>&1 ||
            { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine time >/dev/null; }
    fi
    cargo build --release -q --bin snap
    SNAP=${CARGO_TARGET_DIR:-$PWD/target}/release/snap
    work=$(mktemp -d "/var/tmp/snap-$1-bench.XXXXXX")
    pids=()
    trap cleanup EXIT
    echo "machine: $(nproc) CPUs, $(free -g | awk '/Mem:/ {print $2}') GiB, kernel $(uname -r)" >&2
}

teardown() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    pids=()
}

cleanup() {
    teardown
    rm -rf "$work"
}

hf_stats() {
    python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["results"][int(sys.argv[2])]
print(*(round(r[k] * 1000, 1) for k in ("mean", "stddev", "min", "max")))' "$work/hf.json" "$1"
}
