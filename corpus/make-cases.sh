#!/usr/bin/env bash
# Makes the corpus cases: creates real conditions on this host with small, bounded,
# self-stopping helper processes (perl, loopback-only traffic), runs
# `snap collect --window 2 --no-capture` while each condition holds, and stores the
# bundle as corpus/cases/<name>/bundle.tar.zst. Run as root on Linux (to see every
# process's descriptors, and to make namespaces), from anywhere:
#
#     cargo build --bin snap && sudo corpus/make-cases.sh [CASE...]
#
# CASE is any of: zombies-closewait-deleted quiet busy-loops (default: all of them).
#
# The expected findings are not written here: after a remake, run
# `SNAP_BLESS=1 cargo test --test corpus_cases` to rewrite expected.json, review every
# finding against the conditions printed below, and update the case's README.md (pids,
# ports and the host's history change with every remake).
#
# Environment:
#   SNAP        the snap binary (default: $CARGO_TARGET_DIR/debug/snap, else target/debug/snap)
#   QUIET_WAIT  seconds to wait for a quiet host before each case (default 600); a case
#               is only made on a quiet host (1-minute load at most half the CPU count,
#               CPUs at most 20 % busy), so that other work does not show in it
#   HOLD        seconds each helper lives at most, even if this script dies (default 120)
#
# Each case runs in its own PID and network namespace (unshare), with this script as
# their pid 1: the bundle holds the host's CPUs, memory, filesystems, sysctls and kernel
# log, but only the case's processes and sockets, not those of whoever else uses the
# host (their command lines can hold secrets, and their own test conditions would blur
# the case), nor the previous case's. Every helper is stopped by pid when the case ends
# (trap), each stops itself after HOLD seconds anyway (alarm), and when the namespace's
# pid 1 ends the kernel kills whatever is left in it. No packet leaves the host: the
# namespace has only loopback.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
cases_dir=$here/cases
SNAP=${SNAP:-${CARGO_TARGET_DIR:-$repo/target}/debug/snap}
QUIET_WAIT=${QUIET_WAIT:-600}
HOLD=${HOLD:-120}
MAX_BUNDLE_BYTES=300000
all_cases=(zombies-closewait-deleted quiet busy-loops)
cpus=$(nproc)

die() {
    echo "make-cases: $*" >&2
    exit 1
}
say() { echo "make-cases: $*" >&2; }

# ---------------------------------------------------------------- the host, outside

# Percent of CPU time not idle or iowait over the next 2 seconds (from /proc/stat).
busy_percent() {
    local a b
    a=$(head -1 /proc/stat)
    sleep 2
    b=$(head -1 /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN {
        n = split(a, x); split(b, y); total = 0; idle = 0
        for (i = 2; i <= n && i <= 9; i++) { d = y[i] - x[i]; total += d; if (i == 5 || i == 6) idle += d }
        printf "%d\n", (total > 0) ? 100 * (total - idle) / total : 0 }'
}

# Waits until the host is quiet: nobody else's load in the case.
wait_for_quiet_host() {
    local deadline=$((SECONDS + QUIET_WAIT)) load busy
    while :; do
        load=$(cut -d' ' -f1 /proc/loadavg)
        busy=$(busy_percent)
        if awk -v l="$load" -v c="$cpus" -v b="$busy" 'BEGIN { exit !(l <= 0.5 * c && b <= 20) }'; then
            say "host quiet: load $load on $cpus CPUs, CPUs $busy % busy"
            return 0
        fi
        ((SECONDS < deadline)) || die "the host did not become quiet in ${QUIET_WAIT}s (load $load, CPUs $busy % busy)"
        say "waiting for a quiet host: load $load on $cpus CPUs, CPUs $busy % busy"
        sleep 10
    done
}

# ------------------------------------------------------ inside a case's namespaces

# Every helper's pid; all are stopped when the case ends, by pid.
helpers=()
work=

stop_helpers() {
    local p
    for p in "${helpers[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${helpers[@]}"; do wait "$p" 2>/dev/null || true; done
    helpers=()
}

# Waits (10 s at most) until the file $1 exists: a helper's "ready" signal.
wait_ready() {
    local i
    for ((i = 0; i < 100; i++)); do
        [[ -e $1 ]] && return 0
        sleep 0.1
    done
    die "helper did not get ready ($1)"
}

# Starts a helper: perl with the program $1 and arguments; it renames itself (comm, as
# snap's subjects show it) and is killed by SIGALRM after HOLD seconds whatever happens.
# Descriptors inherited from the caller's shell are closed, so that each helper's
# descriptors are only those of its condition.
start_helper() {
    local prog=$1
    shift
    perl -MPOSIX -e "alarm $HOLD; POSIX::close(\$_) for 3 .. 1023; $prog" "$@" </dev/null &
    helpers+=($!)
}

# Checks that the helpers are all still alive (the condition held through the collection).
still_alive() {
    local p
    for p in "$@"; do kill -0 "$p" 2>/dev/null || die "helper $p ended before the collection finished"; done
}

# Collects this host now into corpus/cases/$1/bundle.tar.zst; extra collect options follow.
collect_case() {
    local name=$1 out bundle size
    shift
    out=$work/out
    mkdir -p "$out"
    bundle=$("$SNAP" collect --window 2 --no-capture --quiet "$@" -o "$out" | tail -1)
    [[ -f $bundle ]] || die "snap collect wrote no bundle for $name"
    mkdir -p "$cases_dir/$name"
    chmod 0644 "$bundle"
    mv "$bundle" "$cases_dir/$name/bundle.tar.zst"
    size=$(stat -c %s "$cases_dir/$name/bundle.tar.zst")
    say "$name: corpus/cases/$name/bundle.tar.zst, $size bytes"
    ((size < MAX_BUNDLE_BYTES)) || say "WARNING: $name's bundle is above $MAX_BUNDLE_BYTES bytes"
}

# Zombie children of pid $1 (state Z, parent $1), counted from /proc.
zombies_of() {
    local n=0 f stat
    for f in /proc/[0-9]*/stat; do
        stat=$(cat "$f" 2>/dev/null) || continue
        stat=${stat##*) }
        [[ $stat == "Z $1 "* ]] && n=$((n + 1))
    done
    echo "$n"
}

case_zombies_closewait_deleted() {
    local zparent cwpid cwport delpid n f
    # 1. A parent with 5 zombie children: they exit at once, it never wait()s.
    start_helper '$0 = "zombie-parent"; for (1..$ARGV[0]) { my $p = fork // die "fork: $!"; if ($p == 0) { exit 0 } }
        open my $r, ">", $ARGV[1] or die; close $r; sleep 1 while 1' 5 "$work/zombies.ready"
    zparent=${helpers[-1]}
    # 2. A server holding 24 loopback connections in CLOSE_WAIT: each client connects and
    #    closes, the server reads end of stream and keeps its socket open (the bug).
    start_helper 'use IO::Socket::INET; $0 = "closewait-srv";
        my $l = IO::Socket::INET->new(Listen => 64, LocalAddr => "127.0.0.1", LocalPort => 0, Proto => "tcp") or die "listen: $!";
        my @held;
        for (1..$ARGV[0]) {
            my $c = IO::Socket::INET->new(PeerAddr => "127.0.0.1", PeerPort => $l->sockport, Proto => "tcp") or die "connect: $!";
            my $s = $l->accept or die "accept: $!";
            close $c;
            my $n = sysread($s, my $buf, 16); die "expected end of stream" unless defined $n && $n == 0;
            push @held, $s;
        }
        open my $r, ">", $ARGV[1] or die; print $r $l->sockport; close $r; sleep 1 while 1' 24 "$work/closewait.ready"
    cwpid=${helpers[-1]}
    # 3. A process holding a deleted 50 MiB file open (a log rotated away under a writer).
    start_helper '$0 = "deleted-holder";
        open my $f, ">", $ARGV[0] or die "$ARGV[0]: $!";
        my $mib = "x" x (1 << 20); for (1..$ARGV[1]) { syswrite($f, $mib) == length $mib or die "write: $!" }
        unlink $ARGV[0] or die "unlink: $!";
        open my $r, ">", $ARGV[2] or die; close $r; sleep 1 while 1' "$work/app.log" 50 "$work/deleted.ready"
    delpid=${helpers[-1]}
    wait_ready "$work/zombies.ready"
    wait_ready "$work/closewait.ready"
    wait_ready "$work/deleted.ready"
    cwport=$(cat "$work/closewait.ready")

    # Oracle checks with the classic tools before collecting.
    n=$(zombies_of "$zparent")
    [[ $n == 5 ]] || die "expected 5 zombies of $zparent, found $n"
    n=$(ss -Htn state close-wait "sport = :$cwport" | wc -l)
    [[ $n == 24 ]] || die "expected 24 CLOSE_WAIT sockets on :$cwport, found $n"
    n=0
    for f in "/proc/$delpid"/fd/*; do
        [[ $(readlink "$f") == "$work/app.log (deleted)" ]] && n=$((n + 1))
    done
    [[ $n == 1 ]] || die "pid $delpid holds no deleted $work/app.log"
    say "conditions: zombie-parent pid $zparent with 5 zombies; closewait-srv pid $cwpid with 24 CLOSE_WAIT" \
        "on 127.0.0.1:$cwport; deleted-holder pid $delpid holding $work/app.log (deleted, 52428800 bytes)" \
        "on $(df --output=target "$work" | tail -1)"

    collect_case zombies-closewait-deleted
    still_alive "$zparent" "$cwpid" "$delpid"
    stop_helpers
}

case_quiet() {
    # Nothing created: the quiet host as it is.
    collect_case quiet
}

case_busy_loops() {
    local n=$((2 * cpus)) i pids=()
    # Twice as many busy loops as CPUs, at normal priority, through the whole window.
    for ((i = 0; i < n; i++)); do
        start_helper '$0 = "busy-loop"; 1 while 1'
        pids+=("${helpers[-1]}")
    done
    sleep 5
    say "conditions: $n busy loops (pids ${pids[*]}) on $cpus CPUs, running 5 s before the collection"
    # --no-nice: at nice 19 snap gets a few per mille of a CPU against busy loops at
    # nice 0, and its snapshot before the window would take tens of seconds.
    collect_case busy-loops --no-nice
    still_alive "${pids[@]}"
    stop_helpers
}

if [[ -n ${SNAP_CORPUS_CASE:-} ]]; then
    # This is pid 1 of the case's namespaces.
    ip link set lo up
    work=$(mktemp -d /var/tmp/snap-corpus.XXXXXX)
    trap 'stop_helpers; rm -rf "$work"' EXIT
    trap 'exit 130' INT TERM
    "case_${SNAP_CORPUS_CASE//-/_}"
    exit 0
fi

# ------------------------------------------------------------------------ main

[[ $(uname -s) == Linux ]] || die "needs Linux"
[[ $(id -u) == 0 ]] || die "needs root (to see every process's open files and sockets)"
[[ -x $SNAP ]] || die "no snap binary at $SNAP (cargo build --bin snap, or set SNAP=)"
for tool in perl unshare ip ss; do command -v $tool >/dev/null || die "needs $tool"; done
cases=("$@")
[[ ${#cases[@]} -gt 0 ]] || cases=("${all_cases[@]}")
for c in "${cases[@]}"; do
    [[ " ${all_cases[*]} " == *" $c "* ]] || die "unknown case $c (known: ${all_cases[*]})"
done
SNAP=$(realpath "$SNAP")
export SNAP HOLD

say "snap $("$SNAP" --version | awk '{print $2}'), $cpus CPUs, kernel $(uname -r), cases: ${cases[*]}"
for c in "${cases[@]}"; do
    wait_for_quiet_host
    # --kill-child: if unshare dies, the case's pid 1 gets SIGTERM and stops its helpers.
    SNAP_CORPUS_CASE=$c unshare --pid --fork --mount-proc --net --kill-child=TERM -- bash "$here/$(basename "$0")"
done
say "done; now: SNAP_BLESS=1 cargo test --test corpus_cases, review expected.json, update the READMEs"
